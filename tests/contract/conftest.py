"""The store every contract test runs against: a migrated database of each kind in turn."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cronkeeper.store.migrate import upgrade
from cronkeeper.store.sql import SqlJobStore


@pytest.fixture
def store(any_db_url: str) -> Iterator[SqlJobStore]:
    store = SqlJobStore(any_db_url)
    upgrade(store.engine)
    yield store
    store.close()
