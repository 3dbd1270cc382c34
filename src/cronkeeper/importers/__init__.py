"""Importers: what other schedulers left behind, translated into cronkeeper job definitions.
:mod:`~cronkeeper.importers.crontab` reads crontab files, :mod:`~cronkeeper.importers.apscheduler` the job
table of an APScheduler 3 SQLAlchemy job store.  They only read and translate; the CLI validates and writes
through the job service."""
