"""Reaching behind the scheduler, as tests (and only tests) may: to write rows the engine would write, count
queries, or read what no face shows."""

from __future__ import annotations

from sqlalchemy import Engine

from cronkeeper.scheduler import SchedulerBase
from cronkeeper.store.sql import SqlJobStore


def sql_engine(scheduler: SchedulerBase) -> Engine:
    """The SQLAlchemy engine behind a scheduler's job store."""
    store = scheduler.store
    assert isinstance(store, SqlJobStore)
    return store.engine
