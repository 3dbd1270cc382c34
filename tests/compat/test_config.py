"""Constructor options as APScheduler 3 takes them: each means something or is refused by name."""

from __future__ import annotations

import logging
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronkeeper.compat.apscheduler import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BlockingScheduler,
    MemoryJobStore,
    ProcessPoolExecutor,
    SQLAlchemyJobStore,
    ThreadPoolExecutor,
)
from cronkeeper.exceptions import ValidationError
from cronkeeper.settings import SchedulerSettings
from cronkeeper.testing import sql_engine
from tests.compat.conftest import Factory


def noop() -> None:
    pass


@pytest.mark.parametrize(
    ("cls", "options", "field"),
    [
        (BackgroundScheduler, {"job_default": {}}, "job_default"),
        (BackgroundScheduler, {"event_loop": None}, "event_loop"),
        (BlockingScheduler, {"daemon": True}, "daemon"),
        (AsyncIOScheduler, {"threadpool": 3}, "threadpool"),
    ],
)
def test_unknown_options_are_refused_naming_them(
    make: Factory, cls: type[Any], options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(cls, **options)
    assert caught.value.field == field
    assert cls.__name__ in str(caught.value)


def test_unknown_gconfig_keys_are_refused_too(make: Factory) -> None:
    with pytest.raises(ValidationError, match="misfire: unknown option"):
        make(BackgroundScheduler, gconfig={"apscheduler.misfire": 5})


def test_gconfig_with_prefix_and_dotted_keys_configures_like_apscheduler(make: Factory) -> None:
    gconfig = {
        "apscheduler.timezone": "Europe/Paris",
        "apscheduler.job_defaults.coalesce": "false",
        "apscheduler.job_defaults.max_instances": "3",
        "apscheduler.job_defaults.misfire_grace_time": "30",
        "apscheduler.executors.default": {
            "class": "apscheduler.executors.pool:ThreadPoolExecutor",
            "max_workers": "7",
        },
    }
    sched = make(BackgroundScheduler, gconfig=gconfig)
    assert sched.timezone == ZoneInfo("Europe/Paris")
    assert sched.core.settings.workers == 7
    job = sched.add_job(noop, "cron", hour=3)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (False, 3, 30)
    spec = sched.core.get_job(job.id).spec
    assert (spec.catchup.value, spec.max_instances, spec.misfire_grace) == ("all", 3, timedelta(seconds=30))


def test_gconfig_reads_only_the_prefixed_keys_as_apscheduler(make: Factory) -> None:
    settings = {"DEBUG": True, "SECRET_KEY": "x", "apscheduler.timezone": "Europe/Paris"}
    sched = make(BackgroundScheduler, gconfig=settings)
    assert sched.timezone == ZoneInfo("Europe/Paris")


def test_keyword_options_override_gconfig(make: Factory) -> None:
    sched = make(BackgroundScheduler, gconfig={"apscheduler.timezone": "Europe/Paris"}, timezone="Asia/Tokyo")
    assert sched.timezone == ZoneInfo("Asia/Tokyo")


def test_without_job_defaults_cronkeeper_defaults_apply(sched: BackgroundScheduler) -> None:
    job = sched.add_job(noop, "interval", hours=1)
    assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, 60)


def test_thread_pool_size_becomes_the_worker_count(make: Factory) -> None:
    ours = make(BackgroundScheduler, executors={"default": ThreadPoolExecutor(12)})
    assert ours.core.settings.workers == 12
    dict_form = make(BackgroundScheduler, executors={"default": {"type": "threadpool", "max_workers": 9}})
    assert dict_form.core.settings.workers == 9


def test_apschedulers_own_thread_pool_object_is_understood(make: Factory) -> None:
    pool = pytest.importorskip("apscheduler.executors.pool")
    sched = make(BackgroundScheduler, executors={"default": pool.ThreadPoolExecutor(15)})
    assert sched.core.settings.workers == 15


def test_process_pool_is_refused_with_a_pointer_to_isolate(make: Factory) -> None:
    with pytest.raises(ValidationError, match="isolate=True") as caught:
        make(
            BackgroundScheduler,
            executors={"default": ThreadPoolExecutor(5), "processpool": ProcessPoolExecutor(5)},
        )
    assert caught.value.field == "executors['processpool']"
    pool = pytest.importorskip("apscheduler.executors.pool")
    with pytest.raises(ValidationError, match="isolate=True"):
        make(BackgroundScheduler, executors={"default": pool.ProcessPoolExecutor(2)})


def test_a_second_executors_pool_size_is_refused_not_ignored(make: Factory) -> None:
    executors = {
        "default": {"type": "threadpool", "max_workers": 10},
        "single": {"type": "threadpool", "max_workers": 1},
    }
    with pytest.raises(ValidationError, match="max_workers=1 of a second executor") as caught:
        make(BackgroundScheduler, executors=executors)
    assert caught.value.field == "executors['single']"
    sched = make(
        BackgroundScheduler, executors={"default": ThreadPoolExecutor(3), "aio": {"type": "asyncio"}}
    )
    assert sched.add_job(noop, "interval", minutes=1, executor="aio").executor == "aio"


def test_job_stores_are_ignored_with_a_warning(make: Factory) -> None:
    with pytest.warns(UserWarning, match="jobstores are ignored: cronkeeper keeps jobs"):
        sched = make(BackgroundScheduler, jobstores={"default": MemoryJobStore()})
    sched.add_job(noop, "interval", minutes=1, id="kept")
    assert [job.id for job in sched.get_jobs()] == ["kept"]


def test_a_sqlalchemy_job_stores_url_is_the_database_when_db_is_not_given(
    make: Factory, tmp_path: Path, clock: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        sched = make(BackgroundScheduler, db=None, jobstores={"default": SQLAlchemyJobStore(url=url)})
    sched.add_job(noop, "interval", minutes=1, id="in-jobs-sqlite")
    assert (tmp_path / "jobs.sqlite").exists()
    assert str(sql_engine(sched.core).url) == url


def test_apschedulers_own_sqlalchemy_job_store_and_dict_form_give_their_url(
    make: Factory, tmp_path: Path
) -> None:
    sqlalchemy_store = pytest.importorskip("apscheduler.jobstores.sqlalchemy")
    url = f"sqlite:///{tmp_path / 'aps.sqlite'}"
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        sched = make(
            BackgroundScheduler, db=None, jobstores={"default": sqlalchemy_store.SQLAlchemyJobStore(url=url)}
        )
    assert str(sql_engine(sched.core).url) == url
    other = f"sqlite:///{tmp_path / 'dict.sqlite'}"
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        sched = make(
            BackgroundScheduler, db=None, jobstores={"default": {"type": "sqlalchemy", "url": other}}
        )
    assert str(sql_engine(sched.core).url) == other


def test_db_wins_over_a_job_stores_url(make: Factory, db_url: str, tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="jobstores are ignored"):
        sched = make(
            BackgroundScheduler,
            jobstores={"default": SQLAlchemyJobStore(url=f"sqlite:///{tmp_path / 'x.db'}")},
        )
    assert str(sql_engine(sched.core).url) == db_url


class PytzLike:
    """What a pytz zone offers the facade: a ``zone`` name."""

    zone = "America/Chicago"


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Europe/Paris", "Europe/Paris"),
        (ZoneInfo("Asia/Tokyo"), "Asia/Tokyo"),
        (PytzLike(), "America/Chicago"),
        (UTC, "UTC"),
        ("UTC", "UTC"),
    ],
)
def test_time_zones_are_taken_as_names_zoneinfo_or_pytz(make: Factory, value: object, name: str) -> None:
    sched = make(BackgroundScheduler, timezone=value)
    assert sched.timezone == ZoneInfo(name)
    job = sched.add_job(noop, "cron", hour=3)
    assert sched.core.get_job(job.id).spec.trigger.timezone == ZoneInfo(name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["Mars/Olympus", timezone(timedelta(hours=2)), 3])
def test_a_zone_without_an_iana_name_is_refused(make: Factory, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        make(BackgroundScheduler, timezone=value)
    assert caught.value.field == "timezone"


def test_the_default_time_zone_is_utc_never_the_hosts(sched: BackgroundScheduler) -> None:
    assert sched.timezone == ZoneInfo("UTC")


def test_bad_job_defaults_are_refused_naming_them(make: Factory) -> None:
    with pytest.raises(ValidationError, match=r"job_defaults\.coalesse: unknown job default"):
        make(BackgroundScheduler, job_defaults={"coalesse": False})
    with pytest.raises(ValidationError) as caught:
        make(BackgroundScheduler, job_defaults={"max_instances": 0})
    assert caught.value.field == "job_defaults.max_instances"


def test_daemon_true_is_accepted_and_false_refused(make: Factory) -> None:
    make(BackgroundScheduler, daemon=True)
    with pytest.raises(ValidationError, match="daemon"):
        make(BackgroundScheduler, daemon=False)


def test_jobstore_retry_interval_and_settings_reach_the_engine(make: Factory) -> None:
    sched = make(
        BackgroundScheduler,
        settings=SchedulerSettings(workers=3, lease=timedelta(seconds=90)),
        jobstore_retry_interval=4,
    )
    assert sched.core.settings.workers == 3
    assert sched.core.settings.lease == timedelta(seconds=90)
    assert sched.core.settings.retry_store_after == 4.0


def test_a_logger_given_by_name_logs_listener_failures(
    make: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    sched = make(BackgroundScheduler, logger="myapp.scheduler")

    def broken(event: object) -> None:
        raise RuntimeError("listener bug")

    sched.add_listener(broken)
    with caplog.at_level(logging.ERROR, logger="myapp.scheduler"):
        sched.add_job(noop, "interval", minutes=1)
    assert [record.name for record in caplog.records] == ["myapp.scheduler"]
    assert "Error notifying listener" in caplog.records[0].getMessage()


def test_executors_and_job_stores_can_be_added_after_construction(sched: BackgroundScheduler) -> None:
    sched.add_executor("threadpool", "fast")
    with pytest.raises(ValidationError, match="one worker pool") as caught:
        sched.add_executor("threadpool", "single", max_workers=1)
    assert caught.value.field == "executors['single']"
    sched.add_executor(ThreadPoolExecutor(6))
    assert sched.core.settings.workers == 6
    with pytest.raises(ValidationError, match="isolate"):
        sched.add_executor(ProcessPoolExecutor(2), "procs")
    with pytest.warns(UserWarning, match="job store 'archive' is ignored"):
        sched.add_jobstore("sqlalchemy", "archive", url="sqlite:///archive.db")
    job = sched.add_job(noop, "interval", minutes=1, executor="fast", jobstore="archive")
    assert job.executor == "fast"
    with pytest.raises(ValidationError) as caught:
        sched.add_job(noop, "interval", minutes=1, executor="gpu")
    assert caught.value.field == "executor"
