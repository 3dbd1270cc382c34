"""A private PostgreSQL server for the test session: started from Debian's binaries in a temp directory, on a
Unix socket only, and stopped at the end.  ``CRONKEEPER_TEST_PG_URL`` points at an existing server instead.
Under ``CI=true`` a missing server is an error, never a skip."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

# Each pytest-xdist worker starts a server of its own: its own socket folder, and its own port (PostgreSQL
# derives its shared memory key from the port).
PORT = 54329 + int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb refuses to run as root; the Debian package creates a "postgres" user for that.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


class PrivateCluster:
    """A new PostgreSQL cluster in a temp directory, on a Unix socket only: started, restarted (as an
    operator's restart does: every connection dropped), and deleted.  Used by the tests and by
    ``scripts/chaos.py``."""

    def __init__(self, bindir: Path, port: int = PORT) -> None:
        self.bindir, self.port = bindir, port
        self.root = Path(tempfile.mkdtemp(prefix="cronkeeper-pg-"))
        self.data, self.sockets = self.root / "data", self.root / "sock"
        self.sockets.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            shutil.chown(self.sockets, "postgres")
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@/postgres?host={self.sockets}&port={self.port}"

    def start(self) -> None:
        options = (
            f"-c listen_addresses='' -k {self.sockets} -p {self.port} -c fsync=off -c max_connections=200"
        )
        self._pg("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-l", str(self.root / "log"), "start")

    def stop(self, mode: str = "immediate") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "stop", check=False)

    def restart(self) -> None:
        self.stop("fast")
        self.start()

    def delete(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def _pg(self, tool: str, *arguments: str, check: bool = True) -> None:
        subprocess.run(_as_postgres([str(self.bindir / tool), *arguments]), check=check, capture_output=True)


def binaries_or_skip() -> Path:
    """Debian's PostgreSQL binaries; without them a skip, or under ``CI=true`` an error."""
    bindir = binaries()
    if bindir is None:
        if os.environ.get("CI") == "true":
            raise RuntimeError("PostgreSQL is not installed; .ci/run must install it")
        import pytest  # here: the bench and scripts/chaos.py use this module without pytest installed

        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql); under CI=true an error")
    return bindir


@contextmanager
def private_server() -> Iterator[str]:
    """Yield an admin URL of a new server; the cluster is deleted afterwards."""
    cluster = PrivateCluster(binaries_or_skip())
    try:
        cluster.start()
        yield cluster.admin_url
    finally:
        cluster.delete()


def create_database(admin_url: str, name: str) -> str:
    """A fresh empty database on the server of ``admin_url``; returns its URL."""
    conninfo = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, query = admin_url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}?{query}"
