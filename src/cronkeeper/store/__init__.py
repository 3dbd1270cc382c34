"""The store: everything cronkeeper keeps in its database, and the only code that speaks SQL.

:mod:`~cronkeeper.store.base` holds the contracts (``JobStore`` for the engine; accounts, settings,
idempotency keys, audit log, maintenance, status, dashboard and figures views for the services) and
:mod:`~cronkeeper.store.records` the plain values they exchange.  The ``Sql*`` modules implement them on
SQLAlchemy Core for SQLite and PostgreSQL; :mod:`~cronkeeper.store.database` opens them all on one engine;
Alembic migrations live in ``migrations/``.  Nothing outside this package sees a SQLAlchemy engine.
"""
