"""Serving the web app inside ``cronkeeper serve``: uvicorn in a background thread beside the scheduler.

uvicorn runs in its own thread so that the main thread keeps ``serve``'s SIGTERM/SIGINT handlers: uvicorn
installs signal handlers only when it runs in the main thread (``Server.capture_signals``), and asyncio's
runner only installs its SIGINT handler there too.  ``serve`` decides when to stop, and stops the web app
before the scheduler, so that no request reaches a scheduler that is going away.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from cronkeeper.exceptions import CronkeeperError

UVICORN_LOGGER = "uvicorn.error"


class _Server(uvicorn.Server):
    """A uvicorn server that says when its startup is over, whether the socket listens or not."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.startup_done = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.startup_done.set()


class _StartupErrors(logging.Filter):
    """Keeps the errors uvicorn logs while starting (it logs a port in use, then exits), so that they
    become one line of ours instead of a log line followed by ours."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        reason = record.msg.strerror if isinstance(record.msg, OSError) else None
        self.reasons.append(reason or record.getMessage())
        return False


@contextmanager
def _startup_errors() -> Iterator[_StartupErrors]:
    errors = _StartupErrors()
    logger = logging.getLogger(UVICORN_LOGGER)
    logger.addFilter(errors)
    try:
        yield errors
    finally:
        logger.removeFilter(errors)


def url_of(host: str, port: int) -> str:
    """The address people type: an IPv6 address goes in brackets."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def listen(host: str, port: int) -> socket.socket:
    """The dashboard's listening socket, taken before ``serve`` writes anything, so that a port in use stops
    it with nothing changed; raises CronkeeperError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as exc:
        # socket.create_server adds "(while attempting to bind on address …)": the URL already says that.
        reason = (exc.strerror or str(exc)).split(" (while attempting")[0].lower()
        raise CronkeeperError(f"cannot serve the dashboard on {url_of(host, port)}: {reason}") from None


class WebServer:
    """The web app on a socket from :func:`listen`, in a thread: :meth:`start` returns once it serves,
    :meth:`stop` ends it (and closes the socket).

    ``X-Forwarded-For``/``-Proto`` are trusted from 127.0.0.1 only, the usual place of a reverse proxy.
    """

    def __init__(
        self,
        app: ASGIApp,
        listener: socket.socket,
        *,
        log_level: str = "warning",
        access_log: bool = False,
        trust_proxy: bool = False,
        startup_timeout: float = 30.0,
    ) -> None:
        host, port = listener.getsockname()[:2]
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            # None: records go to the root logger that `serve` configured, in its format.
            log_config=None,
            access_log=access_log,
            proxy_headers=trust_proxy,
            forwarded_allow_ips="127.0.0.1" if trust_proxy else None,
            lifespan="on",
            # A request still open at shutdown may delay it this long, not forever.
            timeout_graceful_shutdown=5,
        )
        self.url = url_of(host, port)
        self._listener = listener
        self._server = _Server(config)
        self._thread = threading.Thread(target=self._run, name="cronkeeper-web", daemon=True)
        self._startup_timeout = startup_timeout
        self._failure: str | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._listener])
        # uvicorn reports a failed startup with sys.exit(), which in a thread would vanish without a word.
        except (Exception, SystemExit) as exc:
            self._failure = f"{type(exc).__name__}: {exc}"
        finally:
            self._server.startup_done.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        """Listen, or raise CronkeeperError saying why not (a port in use, an address not on this host)."""
        with _startup_errors() as errors:
            self._thread.start()
            finished = self._server.startup_done.wait(self._startup_timeout)
        if finished and self._server.started:
            return
        self.stop()
        reason = "; ".join(errors.reasons) or self._failure or "it did not start in time"
        raise CronkeeperError(f"cannot serve the dashboard on {self.url}: {reason}")

    def stop(self, timeout: float = 10.0) -> None:
        """Close the socket and let open requests finish (up to the graceful timeout)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._listener.close()
