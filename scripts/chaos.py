"""Chaos, measured: several ``cronkeeper serve`` nodes on one database, killed, stopped and cut off from it
while they fire a mix of jobs; then the database is checked for what must never happen.

    .venv/bin/python scripts/chaos.py                        # 3 nodes on a private PostgreSQL, 10 minutes
    .venv/bin/python scripts/chaos.py --db sqlite --nodes 2  # two processes on one SQLite file
    .venv/bin/python scripts/chaos.py --duration 60 --every 12-18   # the short variant CI runs

Local only and bounded in time: the PostgreSQL cluster is a private one in a temp directory (Debian's
binaries), alerts go to an HTTP sink on 127.0.0.1, and everything is deleted at the end (``--keep`` keeps
the folder).  Every ``--every`` seconds (at random within the range) one node that holds running runs is
``kill -9``-ed and brought back a few seconds later, or SIGSTOPped past the lease and then continued;
PostgreSQL is restarted once, half-way; and once, at three quarters, every node is killed at once for longer
than the misfire grace (a total outage, whose fires must be recorded ``missed``).

At the end, with every node back and the runs settled, it checks from the database and from the log each
job writes when it starts (commands and the Python job alike):

- no ``(job_id, scheduled_for, attempt)`` twice, in the runs or in what actually executed;
- every execution belongs to a run of the same fire and attempt that says it started; every run that says
  it ran to an end has an execution;
- no fire of the window neither run nor recorded (a run row, or inside a ``missed`` summary); ``missed``
  only while no node could claim (and shortly after), ``skipped`` only because the last run was still going;
- no run left ``running`` or ``queued`` past the lease; every run a faulted node was running ends ``lost``,
  within the lease plus two heartbeats;
- no final outcome overwritten by a late result (each run's first status, end and exit code, seen by
  polling, still hold);
- alerts were written (an incident and its recovery) and every alert written before the end was delivered
  (and how many were received more than once: delivery is at-least-once);
- no node died on its own, each stopped cleanly, and no traceback is in their logs.

It prints the figures and exits 1 if any check failed.  ``--json FILE`` writes them too.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.postgres import PrivateCluster, binaries, create_database  # noqa: E402
from tests.sinks import WebhookSink, webhook_server  # noqa: E402

from cronkeeper.planning import OVERLAP_SKIP  # noqa: E402
from cronkeeper.specs.stored import spec_from_stored  # noqa: E402

CRONKEEPER = Path(sys.executable).with_name("cronkeeper")
LEASE, HEARTBEAT, GRACE = 10, 2, 5
# How long after every node was down a fire may still be missed: a node starts, syncs and claims.
RECOVERY = timedelta(seconds=GRACE + 10)
# A dead node's runs must be marked lost within this of its death: the lease, two heartbeats, a margin.
LOST_WITHIN = LEASE + 2 * HEARTBEAT + 4
OUTAGE = 12  # seconds every node is down at once: past the misfire grace
# Each command notes that it started (job, fire, attempt, run) in one short append, then does its work.
STARTS = 'echo "$CRONKEEPER_JOB_ID $CRONKEEPER_SCHEDULED_FOR $CRONKEEPER_ATTEMPT $CRONKEEPER_RUN_ID" >> "$0"'
# Fails the fires of every other 5-second slot, on every attempt: incidents open and recover (alerts).
FLAKY = 'S=$(echo "$CRONKEEPER_SCHEDULED_FOR" | cut -c18-19); [ $(( (1$S - 100) / 5 % 2 )) -eq 0 ] || exit 3'
# The Python job, imported by the nodes from the work folder: it notes its start as the commands do.
PYTHON_JOB = '''"""The chaos run's Python job."""
import time

import cronkeeper


def note_and_sleep(starts: str, seconds: float) -> None:
    run = cronkeeper.current_run()
    with open(starts, "a") as log:
        log.write(f"{run.job_id} {run.scheduled_for.isoformat()} {run.attempt} {run.run_id}\\n")
    time.sleep(seconds)
'''
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "skipped", "missed", "lost")
EXECUTED = {"running", "succeeded", "failed", "timed_out", "lost", "cancelled"}
RAN_TO_AN_END = {"succeeded", "failed", "timed_out"}
ALERT_LINE = re.compile(r"^ALERT (\d+)$", re.MULTILINE)
REFUSED = re.compile(r"result of run \d+ refused")


def jobs(starts_log: Path) -> list[dict[str, Any]]:
    """Every second, every five seconds and cron; quick, slow (past their next fire), failing, retried."""

    def command(work: str) -> list[str]:
        return ["sh", "-c", f"{STARTS}; {work}", str(starts_log)]

    defined: list[dict[str, Any]] = [
        {"id": "tick-a", "every": "1s", "command": command("true")},
        {"id": "tick-b", "every": "1s", "command": command("sleep 0.3")},
        {"id": "tick-slow", "every": "1s", "command": command("sleep 2.5")},
        {"id": "five-ok", "every": "5s", "command": command("sleep 1")},
        {"id": "five-slow", "every": "5s", "command": command("sleep 7")},
        {
            "id": "five-flaky",
            "every": "5s",
            "command": command(f"{FLAKY}; true"),
            "max_retries": 1,
            "retry_base": "1s",
            "retry_jitter": 0,
        },
        {"id": "cron-minute", "cron": "* * * * *", "command": command("sleep 20")},
        {"id": "cron-two", "cron": "*/2 * * * *", "command": command("true")},
        {
            "id": "py-sleep",
            "every": "2s",
            "call": "chaos_jobs:note_and_sleep",
            "args": [str(starts_log), 0.2],
        },
    ]
    return [{**job, "misfire_grace": f"{GRACE}s"} for job in defined]


def config(db_url: str, starts_log: Path, templates: Path, sink: WebhookSink) -> str:
    lines = [
        'name = "chaos"',
        f"db = {json.dumps(db_url)}",
        "[scheduler]",
        f"heartbeat_interval = {HEARTBEAT}",
        f"lease = {LEASE}",
        "poll_interval = 1",
        "[notify]",
        'to = ["sink"]',
        'window = "2s"',
        f"templates = {json.dumps(str(templates))}",
        "[notify.channels]",
        f"sink = {json.dumps(sink.url('alerts'))}",
        "[maintenance]",
        "enabled = false",
    ]
    for job in jobs(starts_log):
        lines.append("[[jobs]]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in job.items())
    text_ = "\n".join(lines) + "\n"
    tomllib.loads(text_)  # a mistake here is the script's, not cronkeeper's
    return text_


@dataclass
class Node:
    """One ``serve`` process; brought back under the same name after a kill."""

    name: str
    argv: list[str]
    workdir: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False

    def start(self) -> None:
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.argv, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def stop(self, timeout: float = 60) -> int | None:
        """A graceful stop (SIGTERM); returns the exit status."""
        if not self.alive:
            return None if self.process is None else self.process.returncode
        if self.stopped:
            self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class Event:
    kind: str  # "kill", "stop", "outage", "restart-db"
    node: str
    at: datetime
    pids: tuple[int, ...] = ()
    ended_at: datetime | None = None
    # The runs its nodes were running when it struck: each must end lost, soon (unless it ended before the
    # signal landed, at ``struck_at``: the list is read just before).
    held: tuple[int, ...] = ()
    struck_at: datetime | None = None


@dataclass
class Chaos:
    """What was done, and what the database said while it was done."""

    events: list[Event] = field(default_factory=list)
    first_final: dict[int, tuple[str, Any, Any]] = field(default_factory=dict)
    poll_errors: int = 0

    def poll(self, engine: Engine) -> None:
        """Note the first final outcome of each run that ended lately (a later change is a late overwrite)."""
        since = datetime.now(UTC) - timedelta(seconds=120)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT id, status, finished_at, exit_code FROM ck_runs WHERE finished_at > :since"),
                    {"since": since},
                ).all()
        except Exception:  # the database restarting: the next poll sees the same rows
            self.poll_errors += 1
            return
        for run_id, status, finished_at, exit_code in rows:
            if status in FINAL:
                self.first_final.setdefault(run_id, (status, aware_or_none(finished_at), exit_code))

    def windows(self, names: Sequence[str], *, sqlite: bool) -> list[tuple[datetime, datetime]]:
        """When a fault may explain a missed fire: while no node could claim (every node down or frozen, or
        the database restarting), until the first node back has had time to start and claim.  On SQLite a
        frozen node may hold the single write lock, so a stop alone may explain one too."""
        down: dict[str, list[tuple[datetime, datetime]]] = {name: [] for name in names}
        spans: list[tuple[datetime, datetime]] = []
        for event in self.events:
            end = event.ended_at or event.at
            if event.kind in ("outage", "restart-db") or (event.kind == "stop" and sqlite):
                spans.append((event.at, end))
            else:
                down[event.node].append((event.at, end))
        spans.extend(_all_down(down))
        return [(start - timedelta(seconds=1), end + RECOVERY) for start, end in spans]


def _all_down(down: dict[str, list[tuple[datetime, datetime]]]) -> list[tuple[datetime, datetime]]:
    """The spans in which every node was down at once."""
    if not down or any(not spans for spans in down.values()):
        return []
    edges = sorted({instant for spans in down.values() for span in spans for instant in span})
    found = []
    for start, end in itertools.pairwise(edges):
        middle = start + (end - start) / 2
        if all(any(a <= middle <= b for a, b in spans) for spans in down.values()):
            found.append((start, end))
    return found


def now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def database(kind: str, workdir: Path) -> Iterator[tuple[str, PrivateCluster | None]]:
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'chaos.db'}", None
        return
    bindir = binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries not found (apt-get install postgresql)")
    cluster = PrivateCluster(bindir, port=free_port_in(55000, 56000))
    try:
        cluster.start()
        yield create_database(cluster.admin_url, "chaos"), cluster
    finally:
        cluster.delete()


def free_port_in(low: int, high: int) -> int:
    """A port no server listens on (PostgreSQL names its Unix socket after it)."""
    for port in random.sample(range(low, high), 50):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("no free port")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--nodes", type=int, default=None, help="default: 3 on PostgreSQL, 2 on SQLite")
    parser.add_argument("--duration", type=float, default=600, help="seconds of chaos (default 600)")
    parser.add_argument("--every", default="30-60", help="seconds between faults, a range (default 30-60)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, database)")
    args = parser.parse_args(argv)
    nodes = args.nodes or (3 if args.db == "postgres" else 2)
    low, _, high = args.every.partition("-")
    every = (float(low), float(high or low))
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    workdir = Path(tempfile.mkdtemp(prefix="cronkeeper-chaos-"))
    print(
        f"chaos: {nodes} nodes on {args.db}, {args.duration:g} s, a fault every {args.every} s, seed {seed}"
    )
    print(f"chaos: work folder {workdir}")
    with ExitStack() as stack:
        sink = stack.enter_context(webhook_server())
        db_url, cluster = stack.enter_context(database(args.db, workdir))
        figures = run(workdir, db_url, cluster, sink, nodes, args.duration, every, rng)
    figures.update(db=args.db, nodes=nodes, duration=args.duration, every=args.every, seed=seed)
    report(figures)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return 0 if figures["ok"] else 1


def run(
    workdir: Path,
    db_url: str,
    cluster: PrivateCluster | None,
    sink: WebhookSink,
    count: int,
    duration: float,
    every: tuple[float, float],
    rng: random.Random,
) -> dict[str, Any]:
    starts_log, templates = workdir / "starts.log", workdir / "templates"
    templates.mkdir()
    starts_log.touch()
    (workdir / "chaos_jobs.py").write_text(PYTHON_JOB)
    # One line per alert a message carries, whether listed in full or only counted: each can be checked off.
    (templates / "body.txt").write_text(
        "{% for a in alerts %}ALERT {{ a.alert_id }}\n{% endfor %}"
        "{% for m in more %}{% for i in m.alert_ids %}ALERT {{ i }}\n{% endfor %}{% endfor %}"
    )
    toml = workdir / "cronkeeper.toml"
    toml.write_text(config(db_url, starts_log, templates, sink))
    argv = [
        str(CRONKEEPER),
        "--config",
        str(toml),
        "serve",
        "--no-web",
        "--log-level",
        "warning",
        "--stop-timeout",
        "5",
    ]
    paths = [str(workdir), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    nodes = [Node(f"node{number}", argv, workdir, env) for number in range(1, count + 1)]
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    chaos = Chaos()
    statuses: dict[str, int | None] = {}
    try:
        nodes[0].start()  # the first creates the schema; the others join it
        wait_for(lambda: table_exists(engine), 60, "the first node to create the schema")
        for node in nodes[1:]:
            node.start()
        wait_for(lambda: live_nodes(engine) >= count, 60, "every node to heartbeat")
        window_start = now() + timedelta(seconds=2)
        act(nodes, cluster, chaos, engine, rng, every, time.monotonic() + duration)
        window_end = now()
        for node in nodes:  # every node back and running
            if node.stopped:
                node.signal(signal.SIGCONT)
                node.stopped = False
            if not node.alive:
                node.start()
        settle_until = time.monotonic() + LEASE + 3 * HEARTBEAT + 25  # and the longest job (20 s)
        while time.monotonic() < settle_until:
            chaos.poll(engine)
            time.sleep(1)
        cutoff = now()
        stuck = stuck_runs(engine, cutoff)
        wait_for(lambda: alerts_settled(engine, cutoff), 90, "the alerts to be delivered", fail=False)
        crashed = [node.name for node in nodes if not node.alive]
    finally:
        statuses = {node.name: node.stop() for node in nodes}
    try:
        names = [node.name for node in nodes]
        figures = check(engine, chaos, names, starts_log, sink, window_start, window_end, cutoff)
    finally:
        engine.dispose()
    logs = "".join((workdir / f"{node.name}.log").read_text(errors="replace") for node in nodes)
    figures["runs_left_running_or_queued_past_the_lease"] = stuck
    figures["late_results_refused"] = len(REFUSED.findall(logs))
    figures["tracebacks_in_node_logs"] = logs.count("Traceback")
    figures["nodes_that_died_on_their_own"] = crashed
    figures["exit_statuses"] = statuses
    failures = figures["failures"]
    failures["runs left running or queued past the lease"] = stuck
    failures["nodes that died on their own"] = crashed
    failures["nodes that did not stop cleanly"] = [n for n, code in statuses.items() if code not in (0, None)]
    failures["tracebacks in the nodes' logs"] = ["Traceback"] * figures["tracebacks_in_node_logs"]
    figures["ok"] = not any(failures.values())
    figures["failures"] = {
        name: {"count": len(found), "first": found[:10]} for name, found in failures.items()
    }
    return figures


def act(
    nodes: list[Node],
    cluster: PrivateCluster | None,
    chaos: Chaos,
    engine: Engine,
    rng: random.Random,
    every: tuple[float, float],
    until: float,
) -> None:
    """Faults until ``until``: a kill -9 (the node back 3-8 s later) or a SIGSTOP past the lease, in turn,
    each of a node that holds running runs where one does; a database restart half-way; every node killed
    at three quarters, for ``OUTAGE`` seconds."""
    start = time.monotonic()
    restart_db_at = start + (until - start) / 2 if cluster is not None else None
    outage_at: float | None = start + (until - start) * 3 / 4
    settled_at = start
    next_fault = start + rng.uniform(*every) / 2
    later: list[tuple[float, Callable[[], None]]] = []
    kinds = ["kill", "stop"]
    rng.shuffle(kinds)
    turn = 0
    while time.monotonic() < until or outage_at is not None:
        moment = time.monotonic()
        for item in [item for item in later if item[0] <= moment]:
            later.remove(item)
            item[1]()
            settled_at = moment + LOST_WITHIN  # the fault's runs are marked lost by then
        if restart_db_at is not None and moment >= restart_db_at and cluster is not None:
            restart_db_at = None
            event = Event("restart-db", "postgres", now())
            cluster.restart()
            event.ended_at = now()
            chaos.events.append(event)
            print(f"chaos: {event.at:%H:%M:%S} PostgreSQL restarted ({seconds(event)} s)")
        # Once due, the outage comes before any other fault; it waits for the last one to be over and its
        # runs marked lost, so that each fault's figures stay its own.
        if outage_at is not None and moment >= outage_at:
            if not later and moment >= settled_at:
                outage_at = None
                later.append(outage(nodes, chaos, engine))
        elif moment >= next_fault and moment < until:
            next_fault = moment + rng.uniform(*every)
            kind = kinds[turn % 2]
            turn += 1
            healthy = [node for node in nodes if node.alive and not node.stopped]
            held = LEASE + 2 * HEARTBEAT + rng.uniform(0, 3)
            if kind == "stop" and (len(healthy) < 2 or until - moment < held + 1):
                kind = "kill"  # a stop needs another node to notice, and time to last past the lease
            if healthy:
                busy = busy_pids(engine)
                node = rng.choice([node for node in healthy if node.pid in busy] or healthy)
                later.append(fault(kind, node, chaos, engine, rng, held))
        chaos.poll(engine)
        time.sleep(0.5)
    for due, finish in sorted(later, key=lambda item: item[0]):  # every fault lasts as long as it was to
        time.sleep(max(0.0, due - time.monotonic()))
        finish()


def fault(
    kind: str, node: Node, chaos: Chaos, engine: Engine, rng: random.Random, lasting: float
) -> tuple[float, Callable[[], None]]:
    """Do the fault now; return when and how it ends."""
    held = running_runs(engine, [node.pid])
    event = Event(kind, node.name, now(), pids=(node.pid,), held=held)
    chaos.events.append(event)
    if kind == "kill":
        node.kill()
        event.struck_at = now()
        back_in = rng.uniform(3, 8)
        print(f"chaos: {event.at:%H:%M:%S} kill -9 {node.name} (pid {node.pid}), back in {back_in:.0f} s")

        def bring_back() -> None:
            node.start()
            event.ended_at = now()

        return time.monotonic() + back_in, bring_back
    node.signal(signal.SIGSTOP)
    node.stopped = True
    event.struck_at = now()
    print(f"chaos: {event.at:%H:%M:%S} SIGSTOP {node.name} (pid {node.pid}) for {lasting:.0f} s")

    def carry_on() -> None:
        node.signal(signal.SIGCONT)
        node.stopped = False
        event.ended_at = now()

    return time.monotonic() + lasting, carry_on


def outage(nodes: list[Node], chaos: Chaos, engine: Engine) -> tuple[float, Callable[[], None]]:
    """Every node killed at once: no scheduler at all for ``OUTAGE`` seconds."""
    for node in nodes:
        if node.stopped:
            node.signal(signal.SIGCONT)
            node.stopped = False
    down = [node for node in nodes if node.alive]
    pids = [node.pid for node in down]
    event = Event("outage", "all", now(), pids=tuple(pids), held=running_runs(engine, pids))
    chaos.events.append(event)
    for node in down:
        node.kill()
    event.struck_at = now()
    print(f"chaos: {event.at:%H:%M:%S} kill -9 every node, back in {OUTAGE} s")

    def bring_back() -> None:
        for node in nodes:
            if not node.alive:
                node.start()
        event.ended_at = now()

    return time.monotonic() + OUTAGE, bring_back


def seconds(event: Event) -> str:
    return f"{((event.ended_at or event.at) - event.at).total_seconds():.1f}"


def wait_for(condition: Callable[[], bool], timeout: float, what: str, *, fail: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # not there yet (no schema, the database restarting)
            pass
        time.sleep(0.5)
    if fail:
        raise RuntimeError(f"gave up waiting for {what} after {timeout:g} s")


def table_exists(engine: Engine) -> bool:
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM ck_nodes"))
    return True


def live_nodes(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM ck_nodes WHERE stopped_at IS NULL")).scalar_one())


def busy_pids(engine: Engine) -> set[int]:
    """The processes that own running runs now (a fault there tests more than one of an idle node)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT DISTINCT n.pid FROM ck_runs r JOIN ck_nodes n ON n.id = r.owner"
                    " WHERE r.status = 'running'"
                )
            ).all()
    except Exception:
        return set()
    return {int(row[0]) for row in rows}


def running_runs(engine: Engine, pids: Sequence[int]) -> tuple[int, ...]:
    """The runs these processes are running now."""
    if not pids:
        return ()
    marks = ", ".join(str(int(pid)) for pid in pids)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT r.id FROM ck_runs r JOIN ck_nodes n ON n.id = r.owner"
                    f" WHERE r.status = 'running' AND n.pid IN ({marks})"
                )
            ).all()
    except Exception:  # the database restarting: this fault's runs go unchecked
        return ()
    return tuple(int(row[0]) for row in rows)


def alerts_settled(engine: Engine, cutoff: datetime) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM ck_alerts WHERE status IN ('pending', 'sending') AND created_at < :c"),
            {"c": cutoff},
        )
        return int(waiting.scalar_one()) == 0


def stuck_runs(engine: Engine, checked_at: datetime) -> list[int]:
    """Runs still running long after any job could (the longest takes 20 s), or queued past the lease."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, status, started_at, due_at FROM ck_runs WHERE status IN ('running', 'queued')")
        ).all()
    return [
        run_id
        for run_id, status, started_at, due_at in rows
        if (status == "running" and aware(started_at) < checked_at - timedelta(seconds=LEASE + 30))
        or (status == "queued" and aware(due_at) < checked_at - timedelta(seconds=LEASE + 5))
    ]


def aware(value: datetime | str) -> datetime:
    """A stored instant (SQLite gives it back without its zone, or as text), in UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def aware_or_none(value: datetime | str | None) -> datetime | None:
    return None if value is None else aware(value)


def check(
    engine: Engine,
    chaos: Chaos,
    names: Sequence[str],
    starts_log: Path,
    sink: WebhookSink,
    window_start: datetime,
    window_end: datetime,
    cutoff: datetime,
) -> dict[str, Any]:
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT id, job_id, scheduled_for, attempt, status, owner, queued_at, started_at,"
                " finished_at, due_at, result, error, exit_code FROM ck_runs"
            )
        ).all()
        specs = {row.id: row.spec for row in conn.execute(text("SELECT id, spec FROM ck_jobs")).all()}
        alerts = conn.execute(text("SELECT id, status, kind, created_at FROM ck_alerts")).all()
    by_id = {run.id: run for run in runs}
    by_status = Counter(run.status for run in runs)
    keys = Counter((run.job_id, aware(run.scheduled_for), run.attempt) for run in runs)
    duplicate_rows = sorted(str(key) for key, seen in keys.items() if seen > 1)

    lines = [line.split() for line in starts_log.read_text().splitlines() if line.strip()]
    executed = Counter(tuple(line[:3]) for line in lines)
    duplicate_executions = sorted(" ".join(key) for key, seen in executed.items() if seen > 1)
    stray = [
        " ".join(line)
        for line in lines
        if (run := by_id.get(int(line[3]))) is None
        or (run.job_id, aware(run.scheduled_for), run.attempt) != (line[0], aware(line[1]), int(line[2]))
        or run.status not in EXECUTED
    ]
    logged = {int(line[3]) for line in lines}
    unlogged = [
        f"run {run.id} {run.status}" for run in runs if run.status in RAN_TO_AN_END and run.id not in logged
    ]

    lost_slots, fires = unrecorded_fires(runs, specs, window_start, window_end)
    windows = chaos.windows(names, sqlite=engine.dialect.name == "sqlite")
    unexplained_missed = [
        f"{run.job_id} {run.error}" for run in runs if run.status == "missed" and not explained(run, windows)
    ]
    odd_skips = [
        f"run {run.id}: {run.error}"
        for run in runs
        if run.status == "skipped" and OVERLAP_SKIP not in (run.error or "")
    ]

    final_now = {run.id: (run.status, aware_or_none(run.finished_at), run.exit_code) for run in runs}
    overwritten = sorted(
        f"run {run_id}: {first} then {final_now.get(run_id)}"
        for run_id, first in chaos.first_final.items()
        if final_now.get(run_id) != first
    )

    judged = [alert for alert in alerts if aware(alert.created_at) < cutoff]
    received = Counter(
        int(number) for post in sink.posts for number in ALERT_LINE.findall(post.get("message", ""))
    )
    kinds = Counter(alert.kind for alert in alerts)
    undelivered = [alert.id for alert in judged if alert.status != "delivered"]
    never_received = [
        alert.id for alert in judged if alert.status == "delivered" and alert.id not in received
    ]
    no_alerts = [] if kinds["failed"] and kinds["recovered"] else [f"alerts by kind: {dict(kinds)}"]

    measured = [(event, *time_to_lost(event, by_id)) for event in chaos.events if event.kind != "restart-db"]
    not_lost = [problem for _, _, problems in measured for problem in problems]
    idle_faults = sum(1 for event, _, _ in measured if event.kind in ("kill", "stop") and not event.held)
    slow_lost = [
        f"{event.kind} {event.node} at {event.at:%H:%M:%S}: {taken:.1f} s"
        for event, taken, _ in measured
        if taken > LOST_WITHIN + (OUTAGE if event.kind == "outage" else 0)
    ]
    marked = [taken for _, taken, _ in measured if taken]
    failures: dict[str, list[Any]] = {
        "duplicate run rows": duplicate_rows,
        "duplicate executions": duplicate_executions,
        "executions that match no started run": stray,
        "runs that ended without an execution": unlogged,
        "fires neither run nor recorded": lost_slots,
        "fires missed with no fault to explain it": unexplained_missed,
        "runs skipped for another reason than overlap": odd_skips,
        "final outcomes overwritten": overwritten,
        f"runs marked lost over {LOST_WITHIN} s after their fault (an outage: after its end)": slow_lost,
        "runs a fault's node held that did not end lost": not_lost,
        "no incident alerted and recovered": no_alerts,
        "alerts written before the end and not delivered": undelivered,
        "alerts delivered but never received": never_received,
        "no fire recorded missed, though every node was down past the grace": []
        if by_status["missed"]
        else ["0 missed"],
    }
    return {
        "failures": failures,
        "fires_in_window": fires,
        "window": [window_start.isoformat(), window_end.isoformat()],
        "runs": len(runs),
        "runs_by_status": dict(sorted(by_status.items())),
        "executions": sum(executed.values()),
        "kills": sum(event.kind == "kill" for event in chaos.events),
        "stops": sum(event.kind == "stop" for event in chaos.events),
        "outages": sum(event.kind == "outage" for event in chaos.events),
        "database_restarts": sum(event.kind == "restart-db" for event in chaos.events),
        "faults_on_idle_nodes": idle_faults,
        "events": [
            {
                "kind": e.kind,
                "node": e.node,
                "at": e.at.isoformat(),
                "ended_at": e.ended_at and e.ended_at.isoformat(),
            }
            for e in chaos.events
        ],
        "longest_to_lost_s": round(max(marked), 1) if marked else None,
        "to_lost_s": [round(value, 1) for value in marked],
        "alerts": len(alerts),
        "alerts_by_kind": dict(kinds),
        "alerts_by_status": dict(Counter(alert.status for alert in alerts)),
        "alerts_received_more_than_once": sum(1 for seen in received.values() if seen > 1),
        "messages_received": len(sink.posts),
        "poll_errors": chaos.poll_errors,
    }


def explained(run: Any, windows: list[tuple[datetime, datetime]]) -> bool:
    """Whether every fire a ``missed`` record summarises lies in a window a fault explains."""
    result = run.result if isinstance(run.result, dict) or run.result is None else json.loads(run.result)
    first = aware(result["first"]) if result else aware(run.scheduled_for)
    last = aware(result["last"]) if result else first
    return any(start <= first and last <= end for start, end in windows)


def time_to_lost(event: Event, by_id: dict[int, Any]) -> tuple[float, list[str]]:
    """Seconds from a fault to the last run its nodes held then being marked lost, and the held runs that
    were not (a run that ended before the fault struck is not held)."""
    taken, not_lost = 0.0, []
    for run_id in event.held:
        run = by_id.get(run_id)
        finished = None if run is None else aware_or_none(run.finished_at)
        struck = event.struck_at or event.at
        if run is not None and run.status != "lost" and finished is not None and finished <= struck:
            continue  # it ended a moment before the fault
        if run is None or run.status != "lost" or finished is None:
            not_lost.append(f"run {run_id} held by {event.node} at {event.at:%H:%M:%S}: {run and run.status}")
            continue
        taken = max(taken, (finished - event.at).total_seconds())
    return taken, not_lost


def unrecorded_fires(
    runs: Sequence[Any], specs: dict[str, Any], window_start: datetime, window_end: datetime
) -> tuple[list[str], int]:
    """The fires of each scheduled job in the window that no run row and no ``missed`` summary holds."""
    recorded: dict[str, set[datetime | None]] = {}
    missed: dict[str, list[tuple[datetime, datetime]]] = {}
    for run in runs:
        if run.attempt != 0:
            continue
        recorded.setdefault(run.job_id, set()).add(aware(run.scheduled_for))
        result = run.result if isinstance(run.result, dict) or run.result is None else json.loads(run.result)
        if run.status == "missed" and result:
            missed.setdefault(run.job_id, []).append((aware(result["first"]), aware(result["last"])))
    unrecorded: list[str] = []
    fires = 0
    for job_id, stored in specs.items():
        spec = spec_from_stored(stored if isinstance(stored, dict) else json.loads(stored))
        fire = spec.trigger.next_after(window_start)
        while fire is not None and fire <= window_end:
            fires += 1
            covered = fire in recorded.get(job_id, ()) or any(
                first <= fire <= last for first, last in missed.get(job_id, ())
            )
            if not covered:
                unrecorded.append(f"{job_id} {fire.isoformat()}")
            fire = spec.trigger.next_after(fire)
    return unrecorded, fires


def report(figures: dict[str, Any]) -> None:
    print()
    print(
        f"fires in the window: {figures['fires_in_window']}  runs: {figures['runs']}  "
        f"executions: {figures['executions']}"
    )
    print(f"runs by status: {figures['runs_by_status']}")
    print(
        f"faults: {figures['kills']} kill -9, {figures['stops']} SIGSTOP past the lease, "
        f"{figures['outages']} outage of every node, {figures['database_restarts']} database restart(s); "
        f"{figures['faults_on_idle_nodes']} of the kills and stops found no running run"
    )
    print(
        f"time from a fault to its node's runs marked lost: longest {figures['longest_to_lost_s']} s "
        f"(each: {figures['to_lost_s']}); late results refused: {figures['late_results_refused']}"
    )
    print(
        f"alerts: {figures['alerts']} {figures['alerts_by_kind']} {figures['alerts_by_status']}, "
        f"messages {figures['messages_received']}, "
        f"received more than once: {figures['alerts_received_more_than_once']}"
    )
    for name, found in figures["failures"].items():
        verdict = "ok" if not found["count"] else f"FAILED: {found['count']}, e.g. {found['first'][:3]}"
        print(f"  {name}: {verdict}")
    print(f"node exit statuses: {figures['exit_statuses']}")
    print("chaos: every check held" if figures["ok"] else "chaos: FAILED")


if __name__ == "__main__":
    sys.exit(main())
