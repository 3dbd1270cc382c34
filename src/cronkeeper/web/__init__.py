"""The dashboard and JSON API: :func:`create_app` for ASGI hosts, :func:`wsgi_app` for WSGI hosts."""

from cronkeeper.web.app import create_app, wsgi_app
from cronkeeper.web.settings import WebSettings

__all__ = ["WebSettings", "create_app", "wsgi_app"]
