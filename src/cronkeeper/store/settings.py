"""Values shared by every node on the database (the ``settings`` table)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from cronkeeper.store.base import SettingStore
from cronkeeper.store.engines import writing
from cronkeeper.store.schema import settings


class SqlSettingStore(SettingStore):
    """The settings table on the scheduler's database engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # ---- settings --------------------------------------------------------------------------------------

    def setting(self, key: str, default: str) -> str:
        """The stored value of ``key``, storing ``default`` first if there is none (the first writer wins,
        so every node of a cluster ends up with the same value)."""
        with writing(self.engine) as conn:
            found = conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()
            if found is not None:
                return str(found)
            conn.execute(insert(settings).values(key=key, value=default))
        return default
