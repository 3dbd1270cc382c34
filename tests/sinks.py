"""Real receivers for alerts: an SMTP server (aiosmtpd) and an HTTP server taking webhook posts, both on
localhost, both keeping what they received for the test to read."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick for port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class MailSink:
    """What the SMTP server received: one EmailMessage per recipient and message."""

    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def env(self, to: str = "ops@example.com") -> dict[str, str]:
        """The SMTP_* variables that make the ``email`` channel send here."""
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.port),
            "SMTP_FROM": "cronkeeper@example.com",
            "SMTP_TO": to,
        }

    def url(self, to: str = "ops@example.com") -> str:
        return f"mailto://127.0.0.1:{self.port}?from=cronkeeper@example.com&to={to}&mode=insecure"

    def subjects(self) -> list[str]:
        return [str(message["Subject"]) for message in self.messages]


class _Keep:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.messages.append(message)
        return "250 OK"


@contextmanager
def mail_server() -> Iterator[MailSink]:
    sink = MailSink(free_port())
    controller = Controller(_Keep(sink), hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@dataclass
class WebhookSink:
    """What the HTTP server received: the JSON bodies posted to it.  ``delay`` makes it answer that late (a
    hung service); ``status`` makes it refuse."""

    port: int
    posts: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    delay: float = 0.0
    status: int = 200

    def url(self, path: str = "hook") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"


@contextmanager
def webhook_server() -> Iterator[WebhookSink]:
    sink = WebhookSink(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if sink.delay:
                time.sleep(sink.delay)
            sink.posts.append(json.loads(body))
            sink.paths.append(self.path)
            self.send_response(sink.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", sink.port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """For what another thread or process delivers (a message), not for a schedule: those use the clock."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)
