"""Channels are Apprise URLs: checked when saved, masked wherever shown, and sent to with a deadline.

A channel URL holds credentials (an SMTP password, a Slack or Telegram token).  Nothing outside the store and
:func:`send` sees it whole: pages, the API, the CLI, the audit log, logs and error messages get :func:`mask`'s
form, and the errors a service reports are :func:`scrub`bed of every secret part before they are kept.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from cronkeeper.exceptions import ValidationError

if TYPE_CHECKING:  # Apprise loads its hundred plugins when imported: only when a channel is used
    import apprise

# E-mail channels get the HTML body; every other service the plain text one.
EMAIL_SCHEMES = frozenset({"mailto", "mailtos"})
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PROBLEMS = frozenset({"WARNING", "ERROR", "CRITICAL"})
_TOKENS = re.compile(r"[^/:@?&=#,+\s]+")
# Query parameters whose values are secret whatever the service: Apprise's custom headers (+Name), payload
# fields (:name) and GET parameters (-name) of webhooks, and any name that says "secret".
_SECRET_PARAM = re.compile(r"^[+:-]|token|key|secret|pass|auth|sig|code|hook|cred", re.IGNORECASE)
# A path segment (or user name) that looks like a token is masked: webhook URLs carry theirs in the path.
# Letters and digits mixed from 8 characters on, or anything this alphabet holds from 20 on.
_TOKEN_SEGMENT = re.compile(r"^(?:(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9_-]{8,}|[A-Za-z0-9_-]{20,})$")
MASK = "****"


class _QuietAboutUrls(logging.Filter):
    """Apprise logs a URL it cannot read with some of its characters (the first and last of a password);
    cronkeeper reports the error itself, naming only the scheme, so those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Unparseable URL", "Could not load", "Unsupported schema"))


logging.getLogger("apprise").addFilter(_QuietAboutUrls())


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
    plugin = _plugin(url)
    if plugin is None:
        raise ValidationError(field, f"no notification service understands this {scheme}:// URL")
    if not _read_as_written(url, plugin):
        raise ValidationError(
            field,
            f"this {scheme}:// URL is not read as written: percent-encode / ? # @ : in its user name and "
            "password (%2F %3F %23 %40 %3A)",
        )
    return url


def _read_as_written(url: str, plugin: apprise.NotifyBase) -> bool:
    """Whether Apprise reads the host the URL names.  A password holding an unencoded ``@`` or ``/`` moves
    the host (to part of the password, or to a public service) without an error from Apprise; a URL without
    a user name and password (a Telegram or Slack token) has nothing to misread."""
    rest = url.split("://", 1)[1].split("?", 1)[0].split("#", 1)[0]
    authority, _, path = rest.partition("/")
    if "@" in authority:
        host = getattr(plugin, "host", None)
        named = authority.rpartition("@")[2].rpartition(":")[0] or authority.rpartition("@")[2]
        return not isinstance(host, str) or not host or host.lower() == named.lower().strip("[]")
    _, colon, port = authority.partition(":")
    # "user:pa/ss@host": the authority ends at the "/", so what looks like a port is part of a password.
    return not (colon and "@" in path and not port.isdigit())


def mask(url: str) -> str:
    """The URL as anyone may see it: Apprise's own private form (passwords and the tokens each service knows
    starred), then every query value that may be secret (custom headers, webhook fields and parameters,
    names that say so) and every token-like path segment starred as well."""
    plugin = _plugin(url)
    if plugin is None:
        return f"{scheme_of(url) or 'unknown'}://{MASK}"
    private = str(plugin.url(privacy=True))  # type: ignore[no-untyped-call]  # Apprise leaves it untyped
    parts = urlsplit(private)
    path = "/".join(MASK if _TOKEN_SEGMENT.match(unquote(seg)) else seg for seg in parts.path.split("/"))
    user, at, host = parts.netloc.rpartition("@")
    if at and _TOKEN_SEGMENT.match(unquote(user.partition(":")[0])):
        parts = parts._replace(netloc=f"{MASK}{user[user.find(':') :] if ':' in user else ''}@{host}")
    query = [
        (name, MASK if _SECRET_PARAM.search(name) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(path=path, query=urlencode(query, safe="*@,")))


def scrub(text: str, url: str) -> str:
    """``text`` with every part of ``url`` that its masked form hides replaced by ``****``."""
    masked = mask(url)
    shown = set(_TOKENS.findall(masked)) | set(_TOKENS.findall(unquote(masked)))
    # The secrets as written in the URL and as a service may echo them, decoded ("p&ss" is "p%26ss").
    written = set(_TOKENS.findall(url)) | set(_TOKENS.findall(unquote(url)))
    secrets = {token for token in written if token not in shown and len(token) >= 3}
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def send(url: str, message: Message, *, timeout: float) -> str | None:
    """Send; None when delivered, else what went wrong (scrubbed), in the service's own words.

    ``timeout`` bounds the whole call (Apprise stops waiting at its deadline), so that a hung service
    costs a courier at most that long.
    """
    import apprise

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
    import apprise

    try:
        plugin = apprise.Apprise.instantiate(url)
    except Exception:  # a plugin that chokes on a malformed URL: the same as none understanding it
        return None
    return plugin if isinstance(plugin, apprise.NotifyBase) else None
