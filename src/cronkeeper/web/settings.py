"""How the web app is served: address, cookies, sessions and whether /metrics needs a login."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class WebSettings:
    """Options of the dashboard and API; ``[web]`` in cronkeeper.toml sets them for ``serve``.

    ``secure_cookies`` None means: Secure when the request came over https (behind a proxy, run uvicorn
    with ``--proxy-headers`` or set it to True).
    """

    host: str = "127.0.0.1"
    port: int = 8787
    public_metrics: bool = False
    session_lifetime: timedelta = timedelta(hours=12)
    secure_cookies: bool | None = None
    # Behind a reverse proxy on this host: believe its X-Forwarded-For/-Proto (the client's address in the
    # audit log, https for Secure cookies).  Off by default, as any local process could send those headers.
    trust_proxy: bool = False
    # ``serve --demo``: take alerts at POST /demo/inbox (no login: Apprise posts there) and show them.
    demo_inbox: bool = False
    login_attempts: int = 5
    login_window: timedelta = timedelta(minutes=15)
