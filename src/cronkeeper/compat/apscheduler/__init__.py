"""APScheduler 3's API on cronkeeper: change one import line, keep your code, gain persistent run history,
timeouts, retries, safe multi-process operation and the dashboard.

::

    # from apscheduler.schedulers.background import BackgroundScheduler
    from cronkeeper.compat.apscheduler import BackgroundScheduler

    scheduler = BackgroundScheduler(timezone="Europe/Paris", db="sqlite:///app.db")
    scheduler.add_job(cleanup, "cron", hour=3, id="cleanup", replace_existing=True)
    scheduler.start()

Provided: ``BackgroundScheduler``, ``BlockingScheduler``, ``AsyncIOScheduler``; ``CronTrigger`` (with
``from_crontab``), ``IntervalTrigger``, ``DateTrigger``; ``Job``; the ``EVENT_*`` codes with APScheduler's
values and the event classes; ``JobLookupError``, ``ConflictingIdError``, ``SchedulerAlreadyRunningError``,
``SchedulerNotRunningError``; the ``STATE_*`` constants; stand-ins for APScheduler's executor and job store
classes.  APScheduler's own trigger, executor and job store objects are accepted as well.  ``scheduler.core``
is the cronkeeper scheduler underneath (run history, manual triggers, cancelling runs).

Decisions, where cronkeeper cannot or should not do what APScheduler 3 does:

- **Jobs are persistent.**  cronkeeper always keeps jobs in its database (``db=``, default
  ``sqlite:///cronkeeper.db``; when ``db`` is not given, the URL of a ``SQLAlchemyJobStore`` configured as the
  default job store is used).  ``jobstores`` is otherwise ignored, with a ``UserWarning``; their aliases (and
  ``default``) are accepted as ``jobstore=`` arguments, any other is refused with ``UnknownJobStoreError`` (a
  ``KeyError``, as APScheduler's "No such job store", naming ``jobstore``) by every job method.
- **Adding is declaring.**  APScheduler's default memory store forgets jobs at exit, so programs add their
  jobs at every start.  Adding a job whose id is already stored (by an earlier run, or another process)
  updates it in place and keeps its history and, if nothing changed, its schedule; an interval job keeps the
  grid it got when first added.  ``ConflictingIdError`` is raised only when one scheduler object adds the
  same id twice without ``replace_existing``.  A job paused from the dashboard or the CLI stays paused when
  the program adds it again.  Jobs the program no longer adds stay in the database (and keep firing) until
  removed: ``remove_job``, ``cronkeeper jobs remove`` or the dashboard.
- **Stable ids.**  A job added without an ``id`` is named after its function, ``module.qualname`` (dunder
  parts lose their underscores, ``__main__.tick`` is ``main.tick``; characters an id cannot hold are
  dropped), plus ``-`` and 8 hex digits of a SHA-256 of its JSON arguments when it has arguments; the n-th
  job of one scheduler with the same function and arguments gets ``-n``.  A ``functools.partial`` is named
  after the function it wraps plus the hash of its own arguments (``partial(f, 5)`` gets the id of
  ``add_job(f, args=[5])``; a partial whose arguments are not JSON gets ``functools.partial``, ``_2``… in the
  order added).  The trigger is not part of the id,
  so a schedule changed in code updates the stored job rather than leaving the old one firing.  (APScheduler
  uses a random uuid, which would add a new job at every restart.)
- **Functions by reference, arguments as JSON.**  ``func`` is stored as ``module:qualname`` (or the
  ``"module:function"`` text given); a function that cannot be imported by that name (a lambda, a closure,
  a bound method) runs only in the scheduler object that added it, on the object it is bound to (its job
  shows ``runs_on``); those sharing a name get ``_2``, ``_3``… in the order added.  Several scheduler objects
  of one process (each class with its own, on the one default database) each run their own such jobs; a
  second object adding the same method of another instance without an ``id`` gets the id ``…-2``.
  ``args`` and ``kwargs`` must be JSON-serialisable; nothing is pickled.  Jobs receive them back from JSON
  (a tuple argument arrives as a list).
- **Time zones.**  The scheduler's default time zone is UTC unless ``timezone`` is given, never the host's;
  naive datetimes are read in the trigger's zone, else the scheduler's.  A naive ``next_run_time`` is the
  host's local wall time (what ``datetime.now()`` gives) unless ``timezone`` is given.
- **Cron.**  Keyword ``CronTrigger`` fields have APScheduler's meaning (day_of_week 0 = Monday, omitted
  smaller fields set to their minimum) and are translated to a standard cron expression; what cron cannot
  express is refused with an error naming the field: ``year`` and ``week`` other than ``*``, and ``day``
  combined with ``day_of_week`` (APScheduler requires both, cron fires on either) unless ``day`` is ``*/n``.
  ``last``, ``1st mon`` … ``5th mon`` and ``last mon`` become cron's ``L``, ``1#1`` and ``1L``; a ``second``
  other than 0 gives a six-field expression with seconds (cronkeeper's ``seconds=True``).
  ``CronTrigger.from_crontab`` reads real crontab lines: day of week 0 is **Sunday** (APScheduler 3 reads it
  as Monday, a mistake it documents).  Daylight saving time follows cronkeeper (Vixie cron): a fixed-time job
  in a skipped hour runs once right after the jump, and once in a repeated hour.
- **Misfires.**  ``misfire_grace_time`` maps to cronkeeper's ``misfire_grace`` (default 60 s when not given,
  where APScheduler's is 1 s); ``None`` (no limit) becomes a century.  ``coalesce=True`` (the default) with
  a ``misfire_grace_time`` given (per job or in ``job_defaults``) is cronkeeper's ``catchup="skip"``, as
  APScheduler: the newest due fire runs if it is within the grace, else it is recorded ``missed``
  (``EVENT_JOB_MISSED``).  Without one it is ``catchup="once"``: after downtime, one catch-up run, the other
  fires recorded as one ``missed`` record.  ``coalesce=False`` is ``catchup="all"``: every missed fire runs
  (at most 100).
- **Runs.**  ``max_instances`` is enforced through the database, across processes.  A fire refused by it is
  recorded ``skipped`` (``EVENT_JOB_MAX_INSTANCES``).  ``shutdown()`` waits for running jobs however long they
  take, as APScheduler; ``shutdown(wait=False)`` cancels them (a thread cannot be killed; its result is
  dropped) where APScheduler lets them run on.  Called from a job, a listener or the event loop of an
  ``AsyncIOScheduler``, ``shutdown`` does not wait (a ``BackgroundScheduler`` stopped in an async lifespan
  does).  ``pause()`` stops the engine (runs under way finish) and ``resume()`` starts a new one;
  fires missed meanwhile follow the misfire rules.
- **Events.**  ``EVENT_JOB_SUBMITTED`` when a run starts; ``EVENT_JOB_EXECUTED`` with ``retval`` (the object
  returned when the job ran in this process; from an ``isolate=True`` child, its JSON form from the run
  record); ``EVENT_JOB_ERROR`` for failed, timed-out and lost runs, with the exception when it was raised in
  this process (else a ``JobExecutionError``/``JobTimeoutError`` carrying the recorded message) and the
  traceback text.  Retried attempts each send their own.  Cancelled runs send nothing, and a one-off job's
  last run sends no ``EVENT_JOB_REMOVED``.  Listeners hear about the runs this process executes and the
  missed, skipped and lost records it writes.  Run events of the ``AsyncIOScheduler`` reach listeners on its
  event loop, the others' in cronkeeper's engine thread.
- **Listing.**  ``get_jobs`` shows every Python-function job of the database (also those added by other
  programs, the CLI or the configuration file; command jobs are not APScheduler jobs and are left out).  Jobs
  after their last fire (a date job that ran, a cron job past its ``end_date``) disappear from
  ``get_jobs``/``get_job`` as in APScheduler, but stay in the database with their history; ``remove_job``
  deletes a job *and* its history.  ``remove_all_jobs`` deletes (with their history) only the jobs added
  from code, by the facade or cronkeeper's ``Scheduler``: those of the configuration file, the CLI, the
  dashboard or an import are kept.  Jobs are stored at once, started or not: ``Job.pending`` is always False,
  ``print_jobs`` always lists ``Jobstore default``, and a conflicting id is refused by ``add_job`` itself
  rather than at ``start()``.  A date job whose ``run_date`` is past by more than the misfire grace is
  refused (APScheduler adds it, then reports it missed).
- **next_run_time.**  ``None`` adds or sets a job paused.  A datetime at or before now runs the job now (then
  on schedule); a future one is supported for interval jobs without ``start_date`` (the interval counts from
  it) and date jobs, and refused for cron jobs (give the trigger a ``start_date`` instead).  ``add_job`` of
  a job with no fire left (an ``end_date`` in the past) returns it with ``next_run_time`` None.
- **modify_job(trigger=...)** takes a trigger object, as APScheduler; an alias such as ``"cron"`` (or None) is
  refused with ``NotATriggerError`` (a ``TypeError``, naming ``trigger``): ``reschedule_job`` takes aliases.
- **cronkeeper's own options** are accepted by ``add_job`` and ``modify_job`` beside APScheduler's:
  ``timeout``, ``max_retries``, ``retry_base``, ``retry_factor``, ``retry_cap``, ``retry_jitter``,
  ``isolate`` (run in a child process; replaces a process pool executor, which is refused), ``overlap``,
  ``catchup``, ``description``, ``tags``, ``output_limit``.  Constructor options APScheduler does not have:
  ``db``, ``clock`` (tests), ``settings`` (a ``SchedulerSettings``), ``migrate``.  Any other unknown option
  is an error naming it.
- Not provided: ``configure()``, ``remove_executor``, ``remove_jobstore``, ``export_jobs``/``import_jobs``,
  combining and calendar-interval triggers.
"""

from __future__ import annotations

from cronkeeper.compat.apscheduler.base import STATE_PAUSED, STATE_RUNNING, STATE_STOPPED
from cronkeeper.compat.apscheduler.config import (
    AsyncIOExecutor,
    MemoryJobStore,
    ProcessPoolExecutor,
    SQLAlchemyJobStore,
    ThreadPoolExecutor,
    undefined,
)
from cronkeeper.compat.apscheduler.errors import (
    ConflictingIdError,
    JobExecutionError,
    JobLookupError,
    JobTimeoutError,
    SchedulerAlreadyRunningError,
    SchedulerNotRunningError,
)
from cronkeeper.compat.apscheduler.events import (
    EVENT_ALL,
    EVENT_ALL_JOBS_REMOVED,
    EVENT_EXECUTOR_ADDED,
    EVENT_EXECUTOR_REMOVED,
    EVENT_JOB_ADDED,
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_MODIFIED,
    EVENT_JOB_REMOVED,
    EVENT_JOB_SUBMITTED,
    EVENT_JOBSTORE_ADDED,
    EVENT_JOBSTORE_REMOVED,
    EVENT_SCHEDULER_PAUSED,
    EVENT_SCHEDULER_RESUMED,
    EVENT_SCHEDULER_SHUTDOWN,
    EVENT_SCHEDULER_START,
    EVENT_SCHEDULER_STARTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
    SchedulerEvent,
)
from cronkeeper.compat.apscheduler.jobs import Job
from cronkeeper.compat.apscheduler.schedulers import (
    AsyncIOScheduler,
    BackgroundScheduler,
    BaseScheduler,
    BlockingScheduler,
)
from cronkeeper.compat.apscheduler.triggers import BaseTrigger, CronTrigger, DateTrigger, IntervalTrigger

__all__ = [
    "EVENT_ALL",
    "EVENT_ALL_JOBS_REMOVED",
    "EVENT_EXECUTOR_ADDED",
    "EVENT_EXECUTOR_REMOVED",
    "EVENT_JOBSTORE_ADDED",
    "EVENT_JOBSTORE_REMOVED",
    "EVENT_JOB_ADDED",
    "EVENT_JOB_ERROR",
    "EVENT_JOB_EXECUTED",
    "EVENT_JOB_MAX_INSTANCES",
    "EVENT_JOB_MISSED",
    "EVENT_JOB_MODIFIED",
    "EVENT_JOB_REMOVED",
    "EVENT_JOB_SUBMITTED",
    "EVENT_SCHEDULER_PAUSED",
    "EVENT_SCHEDULER_RESUMED",
    "EVENT_SCHEDULER_SHUTDOWN",
    "EVENT_SCHEDULER_START",
    "EVENT_SCHEDULER_STARTED",
    "STATE_PAUSED",
    "STATE_RUNNING",
    "STATE_STOPPED",
    "AsyncIOExecutor",
    "AsyncIOScheduler",
    "BackgroundScheduler",
    "BaseScheduler",
    "BaseTrigger",
    "BlockingScheduler",
    "ConflictingIdError",
    "CronTrigger",
    "DateTrigger",
    "IntervalTrigger",
    "Job",
    "JobEvent",
    "JobExecutionError",
    "JobExecutionEvent",
    "JobLookupError",
    "JobSubmissionEvent",
    "JobTimeoutError",
    "MemoryJobStore",
    "ProcessPoolExecutor",
    "SQLAlchemyJobStore",
    "SchedulerAlreadyRunningError",
    "SchedulerEvent",
    "SchedulerNotRunningError",
    "ThreadPoolExecutor",
    "undefined",
]
