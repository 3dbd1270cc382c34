"""Reading a crontab (Vixie cron / cronie format) into cronkeeper job definitions.

Pure: text in, job definitions and the lines that cannot be translated (with the reason) out; the CLI does
the writing.  What cron does is kept: each command runs as ``$SHELL -c COMMAND`` (``/bin/sh`` unless the
crontab sets ``SHELL``), with the crontab's variables in its environment and ``$HOME`` as its working
directory when the crontab sets ``HOME``.  ``CRON_TZ`` gives the time zone of the lines after it; the other
lines run in the zone the caller passes (the host's: cron runs them in its local time).  ``TZ`` is only passed
to the commands, as cron does: it does not move the schedule.  ``MAILTO`` becomes an e-mail channel that
the lines after it alert (on failures; on any output, as cron mailed, with ``mail_output``); ``MAILTO=""``
silences them.

A job's id is made from its schedule, zone and command (not its environment), so importing the same crontab
again finds the jobs it made the first time instead of adding them twice, and a changed variable updates
those jobs instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

ID_PREFIX = "crontab-"
_ALIASES = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_ASSIGNMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")
_UNESCAPED_PERCENT = re.compile(r"(?<!\\)%")
_SLUG = re.compile(r"[^a-z0-9]+")
# Variables that steer cron itself rather than being passed to the command.
_CRON_ONLY = frozenset({"CRON_TZ", "MAILTO", "MAILFROM"})


@dataclass(frozen=True, slots=True)
class Skipped:
    """A line that was not turned into a job, and why."""

    line: int
    text: str
    reason: str


@dataclass(slots=True)
class CrontabImport:
    """The job definitions a crontab translates to, each with its line number, and the lines left out."""

    jobs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    # Lines imported with something cron did that the job does not do (the same shape as a skipped line).
    notes: list[Skipped] = field(default_factory=list)
    # The e-mail channels the jobs name: channel name -> the MAILTO addresses (comma-separated).
    mail_channels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _State:
    """What earlier lines set for the lines after them."""

    default_timezone: str
    env: dict[str, str] = field(default_factory=dict)
    timezone: str | None = None
    comments: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    # None: no MAILTO yet (the jobs follow cronkeeper's defaults); "": MAILTO="" (nobody is told).
    mailto: str | None = None
    mail_output: bool = False


def parse_crontab(
    text: str, *, system: bool = False, timezone: str = "UTC", mail_output: bool = False
) -> CrontabImport:
    """Translate a user crontab (``crontab -l``), or with ``system`` one with a user column
    (``/etc/crontab``, ``/etc/cron.d/*``).  ``timezone`` is the zone of the lines without ``CRON_TZ``: the
    local zone of the host whose cron ran them.  With ``mail_output`` the ``MAILTO`` channels hear of every
    run that wrote output, as cron mailed it; without, of failures and recoveries."""
    result = CrontabImport()
    state = _State(timezone, mail_output=mail_output)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            state.comments.clear()
        elif line.startswith("#"):
            state.comments.append(line.lstrip("#").strip())
        elif (assignment := _ASSIGNMENT.match(line)) is not None:
            _assign(state, result, number, raw, assignment.group(1), _unquote(assignment.group(2)))
        else:
            _entry(state, result, number, raw, line, system=system)
    return result


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _assign(state: _State, result: CrontabImport, number: int, raw: str, name: str, value: str) -> None:
    if name == "CRON_TZ":
        state.timezone = value or None
    if name == "MAILTO":
        state.mailto = ",".join(part.strip() for part in value.split(",") if part.strip())
        if state.mailto:
            result.mail_channels[mail_channel_name(state.mailto)] = state.mailto
    if name not in _CRON_ONLY:
        state.env[name] = value


def _entry(state: _State, result: CrontabImport, number: int, raw: str, line: str, *, system: bool) -> None:
    comments, state.comments = state.comments, []
    parts = line.split(None, 1 if line.startswith("@") else 5)
    schedule_parts, rest = (parts[:1], parts[1:]) if line.startswith("@") else (parts[:5], parts[5:])
    if line.startswith("@") and parts[0] not in _ALIASES:
        why = "runs at boot, which is not a schedule" if parts[0] == "@reboot" else "is not a cron alias"
        result.skipped.append(Skipped(number, raw, f"{parts[0]} {why}"))
        return
    user = None
    if system and rest:
        user, *rest = rest[0].split(None, 1)
    if not rest:
        result.skipped.append(Skipped(number, raw, "no command after the schedule"))
        return
    command = rest[0]
    if _UNESCAPED_PERCENT.search(command):
        reason = "uses % (the rest of the line as standard input), which cronkeeper commands do not take"
        result.skipped.append(Skipped(number, raw, reason))
        return
    job = _job(state, " ".join(schedule_parts), command.replace("\\%", "%"), comments, user)
    earlier = state.seen.setdefault(job["id"], number)
    if earlier != number:
        result.skipped.append(Skipped(number, raw, f"the same job as line {earlier}"))
        return
    result.jobs.append((number, job))
    if user is not None:
        reason = f"not translated: runs as the scheduler's user, not {user}"
        result.notes.append(Skipped(number, raw, reason))


def _job(state: _State, schedule: str, command: str, comments: list[str], user: str | None) -> dict[str, Any]:
    shell = state.env.get("SHELL", "/bin/sh")
    env = dict(state.env)
    timezone = state.timezone or state.default_timezone
    job: dict[str, Any] = {"cron": schedule, "timezone": timezone, "command": [shell, "-c", command]}
    if env:
        job["env"] = env
    if env.get("HOME"):
        job["cwd"] = env["HOME"]
    # What the job does when: not its environment, so that a changed variable updates the job in place.
    identity = repr((schedule, timezone, job["command"]))
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    word = PurePosixPath(command.split()[0]).name if command.split() else "job"
    slug = _SLUG.sub("-", word.lower()).strip("-")[:40] or "job"
    job["id"] = f"{ID_PREFIX}{slug}-{digest}"
    job["name"] = command if len(command) <= 200 else command[:199] + "…"
    description = " ".join(comments)
    if user is not None:
        description = f"{description} (ran as {user} in the system crontab)".strip()
    if description:
        job["description"] = description[:4000]
    job["tags"] = ["crontab"]
    if state.mailto is not None:
        job["notify"] = [mail_channel_name(state.mailto)] if state.mailto else []
        if state.mailto and state.mail_output:
            job["notify_on"] = ["output"]
    return job


def mail_channel_name(addresses: str) -> str:
    """A channel name for MAILTO's addresses: readable, and the same for the same addresses."""
    slug = _SLUG.sub("-", addresses.lower()).strip("-")[:40] or "mail"
    digest = hashlib.sha256(addresses.encode()).hexdigest()[:6]
    return f"mailto-{slug}-{digest}"
