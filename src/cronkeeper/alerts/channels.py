"""Channels are Apprise URLs: checked when saved, masked wherever shown, and sent to with a deadline.

A channel URL holds credentials (an SMTP password, a Slack or Telegram token).  Nothing outside the store and
:func:`send` sees it whole: pages, the API, the CLI, the audit log, logs and error messages get :func:`mask`'s
form, and the errors a service reports are :func:`scrub`bed of every secret part before they are kept.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import apprise

from cronkeeper.exceptions import ValidationError

# E-mail channels get the HTML body; every other service the plain text one.
EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PROBLEMS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_TOKENS = re.compile(r"[^/:@?&=#,+\s]+")


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered message: one title, and its body as text and as HTML."""

    title: str
    text: str
    html: str


def scheme_of(url: str) -> str:
    found = _SCHEME.match(url)
    return found.group(1).lower() if found else ""


def check_url(url: object, field: str = "url") -> str:
    """The URL, if some Apprise service understands it; the error names only its scheme, never the URL."""
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(field, "must be an Apprise URL such as mailtos://… or json://…")
    url = url.strip()
    scheme = scheme_of(url)
    if not scheme:
        raise ValidationError(field, "must be an Apprise URL such as mailtos://… or json://…")
    if _plugin(url) is None:
        raise ValidationError(field, f"no notification service understands this {scheme}:// URL")
    return url


def mask(url: str) -> str:
    """The URL as anyone may see it: Apprise's own private form, passwords and tokens starred."""
    plugin = _plugin(url)
    if plugin is None:
        return f"{scheme_of(url) or 'unknown'}://****"
    return str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]  # Apprise leaves it untyped


def scrub(text: str, url: str) -> str:
    """``text`` with every part of ``url`` that its masked form hides replaced by ``****``."""
    shown = set(_TOKENS.findall(mask(url)))
    secrets = {token for token in _TOKENS.findall(url) if token not in shown and len(token) >= 3}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "****")
    return text


def send(url: str, message: Message, *, timeout: float) -> str | None:
    """Send; None when delivered, else what went wrong (scrubbed), in the service's own words.

    ``timeout`` bounds the whole call (Apprise stops waiting at its deadline), so that a hung service
    costs a courier at most that long.
    """
    service = apprise.Apprise()
    if not service.add(url):
        return f"no notification service understands this {scheme_of(url)}:// URL"
    email = scheme_of(url) in EMAIL_SCHEMES
    result = service.notify(
        title=message.title,
        body=message.html if email else message.text,
        body_format=apprise.NotifyFormat.HTML if email else apprise.NotifyFormat.TEXT,
        timeout=timeout,
        log_level=logging.WARNING,
    )
    if result:
        return None
    words = "; ".join(entry.message for entry in result.logs() if str(entry.level) in _PROBLEMS)
    return scrub(words or f"the service did not accept the message ({result.status.name.lower()})", url)


def _plugin(url: str) -> apprise.NotifyBase | None:
    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # a plugin that chokes on a malformed URL: the same as none understanding it
        return None
    return plugin if isinstance(plugin, apprise.NotifyBase) else None
