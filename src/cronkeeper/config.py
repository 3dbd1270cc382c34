"""``cronkeeper.toml``: the database, the default time zone, engine settings and jobs as code.

::

    name = "billing"                 # optional: the jobs below are "config billing" (else the file's path)
    db = "sqlite:///cronkeeper.db"
    timezone = "Europe/Paris"

    [scheduler]
    workers = 20

    [web]
    port = 8787
    session_lifetime = "8h"
    public_url = "https://cron.example.com"   # for links to runs in alerts

    [notify]
    to = ["ops"]                     # every job's channels, unless it names its own (notify = [...])
    on = ["failed", "timed_out", "lost", "missed", "long_running", "recovered"]
    after = 1                        # bad runs in a row before an incident is alerted

    [notify.channels]                # named Apprise URLs; ${VAR} keeps secrets out of the file
    ops = "mailtos://alerts:${SMTP_PASSWORD}@smtp.example.com?to=ops@example.com"

    [maintenance]                    # the built-in jobs; every key optional (defaults shown)
    enabled = true
    prune = "17 3 * * *"             # cron in UTC, or false to leave the job out
    backup = "47 3 * * *"            # SQLite only
    housekeeping = "23 * * * *"      # SQLite only
    keep_runs_for = "90d"
    keep_runs_per_job = 10000
    keep_audit_for = "365d"
    keep_backups = 7
    backup_dir = "backups"           # beside the database file when relative

    [[jobs]]
    id = "backup"
    cron = "${BACKUP_SCHEDULE:-0 3 * * *}"
    command = ["pg_dump", "-f", "/backups/app.sql", "app"]
    timeout = "10m"
    max_retries = 2

``${VAR}`` and ``${VAR:-default}`` in schedules and commands are taken from the environment; a variable that
is not set and has no default is an error naming the job and field.  The file is validated as a whole before
anything is written.
"""

from __future__ import annotations

import os
import re
import shlex
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cronkeeper.durations import parse_duration
from cronkeeper.exceptions import ConfigError, ValidationError
from cronkeeper.incidents import EVERY_RUN_KINDS
from cronkeeper.models import NotifyOptions
from cronkeeper.settings import DeliverySettings, MaintenanceSettings, ReportSettings, SchedulerSettings
from cronkeeper.specs import parse_cron, parse_zone
from cronkeeper.specs.validate import DEFAULT_NOTIFY_KEYS, channel_name, notify_options

# Keys whose string values may use ${VAR}: the schedule and the command, as the docs promise.
SUBSTITUTED_KEYS = frozenset({"cron", "every", "at", "start", "end", "timezone", "command", "cwd", "env"})
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
SETTINGS_KEYS = {
    "workers": int,
    "batch_size": int,
    "poll_interval": float,
    "heartbeat_interval": float,
    "lease": float,
    "progress_interval": float,
    "hold_gc_for_bursts": bool,
}
_TIMEDELTA_SETTINGS = ("heartbeat_interval", "lease", "progress_interval")


@dataclass(frozen=True, slots=True)
class WebConfig:
    """The ``[web]`` table as written: None is a setting the file leaves to the command line or the default.

    Kept apart from ``cronkeeper.web.WebSettings`` so that reading the file does not import the web stack;
    ``secure_cookies`` None is also the default's meaning: Secure when the request came over https.
    """

    host: str | None = None
    port: int | None = None
    public_metrics: bool | None = None
    session_lifetime: timedelta | None = None
    secure_cookies: bool | None = None
    trust_proxy: bool | None = None
    public_url: str | None = None


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    """The ``[notify]`` table: channels by name (URLs with ``${VAR}`` substituted; the ``email`` channel
    from ``SMTP_*`` when no channel of that name is declared), the defaults of every job (None when the file
    sets none, leaving the database's as they are) and how this process delivers."""

    channels: dict[str, str] = field(default_factory=dict, repr=False)
    defaults: NotifyOptions | None = None
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    report: ReportSettings | None = None


MAX_NAME = 100
MAX_ORIGIN = 200  # the length of a job's origin in the database


@dataclass(frozen=True, slots=True)
class Config:
    """A loaded configuration file."""

    path: Path | None = None
    db: str | None = None
    timezone: str | None = None
    settings: SchedulerSettings = field(default_factory=SchedulerSettings)
    # The [[jobs]] tables as written; jobs() substitutes their variables.
    job_tables: list[dict[str, Any]] = field(default_factory=list)
    web: WebConfig = field(default_factory=WebConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    maintenance: MaintenanceSettings = field(default_factory=MaintenanceSettings)
    name: str | None = None
    environ: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    def jobs(self) -> list[dict[str, Any]]:
        """The ``[[jobs]]`` with ``${VAR}`` substituted; raises ConfigError naming the job and field.

        Asked only where jobs are synced or checked, so that a variable a job needs does not stop commands
        that only read the database (``runs list``, ``jobs trigger``) from working where it is not set.
        """
        return [
            expand_job(table, self.environ, f"{self.path}: jobs[{index}]")
            for index, table in enumerate(self.job_tables)
        ]

    @property
    def origin(self) -> str:
        """The origin of the jobs this file declares: ``config`` and its ``name``, else its absolute path
        (as given, symlinks not followed).
        Syncing the file disables only the jobs of this origin, so two services with files of their own
        on one database leave each other's jobs alone."""
        # Absolute, symlinks kept: a deploy that swaps what `current` points at keeps the file's origin.
        where = self.name or (str(self.path.absolute()) if self.path is not None else "")
        origin = f"config {where}".rstrip()
        return origin if len(origin) <= MAX_ORIGIN else f"config …{origin[-(MAX_ORIGIN - 8) :]}"


def substitute(
    text: str, environ: Mapping[str, str], field_name: str, quote: Callable[[str], str] | None = None
) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in ``text`` from ``environ``; ``quote`` wraps each value
    (``shlex.quote`` for a shell command, so a value is always one word and never shell syntax)."""

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or (not value and default is not None):
            if default is None:
                raise ConfigError(field_name, f"environment variable {name} is not set and has no default")
            value = default
        return quote(value) if quote is not None else value

    return _VARIABLE.sub(replace, text)


def _substitute_value(value: Any, environ: Mapping[str, str], field_name: str) -> Any:
    if isinstance(value, str):
        return substitute(value, environ, field_name)
    if isinstance(value, list):
        return [_substitute_value(item, environ, f"{field_name}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: _substitute_value(item, environ, f"{field_name}.{key}") for key, item in value.items()}
    return value


def expand_job(table: Mapping[str, Any], environ: Mapping[str, str], where: str) -> dict[str, Any]:
    """A job table with environment variables substituted in its schedule and command."""
    expanded = {
        key: _substitute_value(value, environ, f"{where}.{key}") if key in SUBSTITUTED_KEYS else value
        for key, value in table.items()
    }
    if table.get("shell") is True and isinstance(table.get("command"), str):
        # The shell would read a substituted value as syntax: quote it into one word instead.
        expanded["command"] = substitute(table["command"], environ, f"{where}.command", quote=shlex.quote)
    return expanded


def bare_config(environ: Mapping[str, str]) -> Config:
    """The configuration without a file: defaults, and the ``email`` channel if ``SMTP_*`` say so."""
    return Config(notify=notify_config({}, environ, where="environment"), environ=dict(environ))


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Read and check ``path``; raises ConfigError naming the file and the field."""
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML: {exc}") from None
    unknown = sorted(
        set(data) - {"name", "db", "timezone", "scheduler", "jobs", "web", "notify", "maintenance"}
    )
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}", "unknown setting")
    jobs = data.get("jobs", [])
    if not isinstance(jobs, list) or not all(isinstance(job, dict) for job in jobs):
        raise ConfigError(f"{path}: jobs", "must be [[jobs]] tables")
    _check_unique_ids(jobs, path)
    web = _web(data.get("web", {}), path, environ)
    return Config(
        path=path,
        db=_optional_str(data, "db", path, environ),
        timezone=_timezone(data, path, environ),
        settings=_settings(data.get("scheduler", {}), path),
        job_tables=jobs,
        web=web,
        notify=notify_config(
            data.get("notify", {}), environ, public_url=web.public_url, where=f"{path}: notify"
        ),
        maintenance=_maintenance(data.get("maintenance", {}), path, environ),
        name=_name(data, path),
        environ=dict(environ),
    )


NOTIFY_KEYS = frozenset(
    {
        *DEFAULT_NOTIFY_KEYS,
        "channels",
        "window",
        "templates",
        "deliver",
        "report",
        "report_schedule",
        "report_period",
    }
)


def notify_config(
    table: Any, environ: Mapping[str, str], *, public_url: str | None = None, where: str = "notify"
) -> NotifyConfig:
    """The ``[notify]`` table (and the ``email`` channel of the ``SMTP_*`` variables); errors name the
    setting as ``where.key``."""
    if not isinstance(table, dict):
        raise ConfigError(where, "must be a table")
    unknown = sorted(set(table) - NOTIFY_KEYS)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", "unknown setting")
    try:
        given = {key: table[key] for key in DEFAULT_NOTIFY_KEYS if key in table}
        defaults = notify_options(given, DEFAULT_NOTIFY_KEYS) if given else None
        if defaults is not None and defaults.on is not None and not defaults.on.isdisjoint(EVERY_RUN_KINDS):
            raise ValidationError(
                "on", "succeeded and output are chosen per job (notify_on), not for every job"
            )
        channels = _channels(table.get("channels", {}), environ)
        delivery = DeliverySettings(
            enabled=_deliver(table.get("deliver", True)),
            window=parse_duration(table.get("window", "60s"), "window"),
            templates=_templates(table.get("templates"), environ),
            public_url=public_url,
        )
        report = _report(table)
    except ValidationError as exc:
        raise located(exc, where) from None
    return NotifyConfig(channels, defaults, delivery, report)


def _report(table: Mapping[str, Any]) -> ReportSettings | None:
    """``report = "CHANNEL"`` turns the report on; its schedule and period have defaults."""
    channel = table.get("report")
    if channel is None:
        for key in ("report_schedule", "report_period"):
            if key in table:
                raise ValidationError(key, "needs report = CHANNEL")
        return None
    default = ReportSettings(channel_name(channel, "report"))
    schedule = table.get("report_schedule", default.schedule)
    if not isinstance(schedule, str):
        raise ValidationError("report_schedule", "must be a cron expression")
    try:
        parse_cron(schedule, False)
    except ValidationError as exc:
        raise ValidationError("report_schedule", exc.reason) from None
    period = parse_duration(table.get("report_period", "7d"), "report_period")
    if period <= timedelta(0):
        raise ValidationError("report_period", "must be longer than zero")
    return ReportSettings(default.channel, schedule, period)


def _channels(table: Any, environ: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(table, dict):
        raise ValidationError("channels", "must be a table of name = Apprise URL")
    channels: dict[str, str] = {}
    for name, url in table.items():
        channel_name(name, f"channels.{name}")
        if not isinstance(url, str):
            raise ValidationError(f"channels.{name}", "must be an Apprise URL")
        channels[name] = substitute(url, environ, f"channels.{name}")
    email = email_url(environ)
    if email is not None and "email" not in channels:
        channels["email"] = email
    return channels


def _deliver(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("deliver", "must be true or false")
    return value


def _templates(value: Any, environ: Mapping[str, str]) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError("templates", "must be a folder")
    folder = Path(substitute(value, environ, "templates"))
    if not folder.is_dir():
        raise ValidationError("templates", f"{folder} is not a folder")
    return folder


def email_url(environ: Mapping[str, str]) -> str | None:
    """The ``email`` channel from the usual variables: ``SMTP_HOST`` (required), ``SMTP_PORT``,
    ``SMTP_USER``, ``SMTP_PASSWORD``, ``SMTP_FROM``, ``SMTP_TO`` (comma-separated), and ``SMTP_TLS=true``
    (TLS from the start, port 465) or ``SMTP_STARTTLS=true`` (an upgrade, port 587; the default with a
    password).  None when ``SMTP_HOST`` is not set."""
    host = environ.get("SMTP_HOST", "").strip()
    if not host:
        return None
    sender = environ.get("SMTP_FROM", "").strip()
    recipients = addresses(environ.get("SMTP_TO", ""))
    if not recipients:
        # MAILTO (import-crontab) names its own recipients: without SMTP_TO there is just no `email` channel.
        return None
    if not sender:
        raise ValidationError("SMTP_FROM", "is required with SMTP_HOST and SMTP_TO")
    user, password = environ.get("SMTP_USER", ""), environ.get("SMTP_PASSWORD", "")
    tls, starttls = _env_flag(environ, "SMTP_TLS"), _env_flag(environ, "SMTP_STARTTLS")
    mode = "ssl" if tls else ("starttls" if starttls or password else "insecure")
    port = environ.get("SMTP_PORT", "").strip() or {"ssl": "465", "starttls": "587"}.get(mode, "25")
    if not port.isdigit():
        raise ValidationError("SMTP_PORT", "must be a port number")
    login = f"{quote(user, safe='')}:{quote(password, safe='')}@" if user else ""
    query = urlencode(
        {"smtp": host, "from": sender, "to": ",".join(recipients), "mode": mode}, safe="@,<>", quote_via=quote
    )
    return f"{'mailto' if mode == 'insecure' else 'mailtos'}://{login}{host}:{port}?{query}"


def addresses(text: str) -> list[str]:
    """E-mail addresses separated by commas or spaces (as MAILTO and SMTP_TO give them)."""
    return [part for part in re.split(r"[,\s]+", text) if part]


def _env_flag(environ: Mapping[str, str], name: str) -> bool:
    value = environ.get(name, "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ValidationError(name, "must be true or false")


def _name(data: Mapping[str, Any], path: Path) -> str | None:
    value = data.get("name")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ConfigError(f"{path}: name", f"must be a text of 1 to {MAX_NAME} characters")
    return value.strip()


def _check_unique_ids(jobs: list[dict[str, Any]], path: Path) -> None:
    seen: set[str] = set()
    for index, job in enumerate(jobs):
        job_id = job.get("id")
        if not isinstance(job_id, str):
            continue  # missing or not text: validating the job reports it with the right reason
        if job_id in seen:
            raise ConfigError(f"{path}: jobs[{index}].id", f"{job_id!r} is declared twice")
        seen.add(job_id)


def _optional_str(data: Mapping[str, Any], key: str, path: Path, environ: Mapping[str, str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{path}: {key}", "must be a string")
    return substitute(value, environ, f"{path}: {key}")


def _timezone(data: Mapping[str, Any], path: Path, environ: Mapping[str, str]) -> str | None:
    """The default zone of jobs, checked here so that an error names this setting, not the first job."""
    name = _optional_str(data, "timezone", path, environ)
    if name is not None:
        try:
            parse_zone(name)
        except ValidationError as exc:
            raise ConfigError(f"{path}: timezone", exc.reason) from None
    return name


def _settings(table: Any, path: Path) -> SchedulerSettings:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: scheduler", "must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        kind = SETTINGS_KEYS.get(key)
        if kind is None:
            raise ConfigError(f"{path}: scheduler.{key}", "unknown setting")
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{path}: scheduler.{key}", "must be true or false")
            values[key] = value
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{path}: scheduler.{key}", "must be a positive whole number")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{path}: scheduler.{key}", "must be a positive number")
        values[key] = timedelta(seconds=value) if key in _TIMEDELTA_SETTINGS else kind(value)
    try:
        return SchedulerSettings(**values)
    except ValidationError as exc:
        raise ConfigError(f"{path}: scheduler.{exc.field}", exc.reason) from None


def _web_host(value: Any, environ: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("host", "must be a host name or address, such as 127.0.0.1")
    return substitute(value, environ, "host").strip()


def _web_port(value: Any, _environ: Mapping[str, str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ValidationError("port", "must be a whole number from 1 to 65535")
    return value


def _flag(value: Any, _environ: Mapping[str, str]) -> bool:
    if not isinstance(value, bool):
        raise ValidationError("flag", "must be true or false")
    return value


def _web_lifetime(value: Any, _environ: Mapping[str, str]) -> timedelta:
    lifetime = parse_duration(value, "session_lifetime")
    if not lifetime:
        raise ValidationError("session_lifetime", "must be longer than zero")
    return lifetime


def _web_url(value: Any, environ: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value.startswith(("http://", "https://")):
        raise ValidationError("public_url", "must be an http:// or https:// address")
    return substitute(value, environ, "public_url").rstrip("/")


WEB_KEYS: dict[str, Callable[[Any, Mapping[str, str]], Any]] = {
    "public_url": _web_url,
    "host": _web_host,
    "port": _web_port,
    "public_metrics": _flag,
    "session_lifetime": _web_lifetime,
    "secure_cookies": _flag,
    "trust_proxy": _flag,
}


def _web(table: Any, path: Path, environ: Mapping[str, str]) -> WebConfig:
    return WebConfig(**_checked_table(table, "web", WEB_KEYS, path, environ))


def _schedule(value: Any, environ: Mapping[str, str]) -> str | None:
    """A cron expression (in UTC), or false: that job is left out."""
    if value is False:
        return None
    if not isinstance(value, str):
        raise ValidationError("schedule", 'must be a cron expression such as "17 3 * * *", or false')
    expression = substitute(value, environ, "schedule").strip()
    parse_cron(expression, False)
    return expression


def _retention(value: Any, _environ: Mapping[str, str]) -> timedelta:
    duration = parse_duration(value, "duration")
    if duration < timedelta(hours=1):
        raise ValidationError("duration", "must be at least 1h")
    return duration


def _count(value: Any, _environ: Mapping[str, str]) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError("count", "must be a whole number, at least 1")
    return value


def _folder(value: Any, environ: Mapping[str, str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("folder", "must be a folder's path")
    return substitute(value, environ, "folder").strip()


MAINTENANCE_KEYS: dict[str, Callable[[Any, Mapping[str, str]], Any]] = {
    "enabled": _flag,
    "prune": _schedule,
    "backup": _schedule,
    "housekeeping": _schedule,
    "keep_runs_for": _retention,
    "keep_runs_per_job": _count,
    "keep_audit_for": _retention,
    "keep_backups": _count,
    "backup_dir": _folder,
}


def _maintenance(table: Any, path: Path, environ: Mapping[str, str]) -> MaintenanceSettings:
    return MaintenanceSettings(**_checked_table(table, "maintenance", MAINTENANCE_KEYS, path, environ))


def _checked_table(
    table: Any,
    name: str,
    checks: Mapping[str, Callable[[Any, Mapping[str, str]], Any]],
    path: Path,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """The values of a table whose every key has a check; an error names the file, table and key."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: {name}", "must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        check = checks.get(key)
        if check is None:
            raise ConfigError(f"{path}: {name}.{key}", "unknown setting")
        try:
            values[key] = check(value, environ)
        except ValidationError as exc:
            raise ConfigError(f"{path}: {name}.{key}", exc.reason) from None
    return values


def located(error: ValidationError, where: str) -> ConfigError:
    """The same error, with its field prefixed by where it was found (``cronkeeper.toml: jobs[2]``)."""
    return ConfigError(f"{where}.{error.field}", error.reason)
