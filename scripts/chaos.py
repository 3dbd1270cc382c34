"""Chaos, measured: several ``cronkeeper serve`` nodes on one database, killed, stopped and cut off from it
while they fire a mix of jobs; then the database is checked for what must never happen.

    .venv/bin/python scripts/chaos.py                        # 3 nodes on a private PostgreSQL, 10 minutes
    .venv/bin/python scripts/chaos.py --db sqlite --nodes 2  # two processes on one SQLite file
    .venv/bin/python scripts/chaos.py --duration 60 --every 12-18   # the short variant CI runs

Local only and bounded in time: the PostgreSQL cluster is a private one in a temp directory (Debian's
binaries), alerts go to an HTTP sink on 127.0.0.1, and everything is deleted at the end (``--keep`` keeps
the folder).  Every ``--every`` seconds (at random within the range) one node is ``kill -9``-ed and
brought back a few seconds later, or one is SIGSTOPped past the lease and then continued; PostgreSQL is
restarted once, half-way.

At the end, with every node back and the runs settled, it checks from the database (and from the log each
command appends to when it starts):

- no ``(job_id, scheduled_for, attempt)`` twice, in the runs or in what actually executed;
- no fire of the window neither run nor recorded (a run row of any status, or inside a ``missed`` summary);
- no run left ``running`` or ``queued`` past the lease;
- no final status overwritten by a late result (each run's first final status, seen by polling, still holds);
- every alert delivered, and how many were delivered more than once (a node killed between sending and
  recording the delivery sends it again: at-least-once, measured).

It prints the figures (fires, runs by status, kills, stops, the longest time from a kill or stop to the dead
node's runs marked ``lost``) and exits 1 if any check failed.  ``--json FILE`` writes them too.
"""

from __future__ import annotations

import argparse
import json
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

from cronkeeper.specs.stored import spec_from_stored  # noqa: E402

CRONKEEPER = Path(sys.executable).with_name("cronkeeper")
LEASE, HEARTBEAT = 10, 2
# Each command notes that it started (job, fire, attempt, run, pid) in one short append, then does its work.
STARTS = 'echo "$CRONKEEPER_JOB_ID $CRONKEEPER_SCHEDULED_FOR $CRONKEEPER_ATTEMPT $CRONKEEPER_RUN_ID" >> "$0"'
# Fails every other 10-second slot, on every attempt: an incident opens, then recovers (alerts both ways).
FLAKY = 'S=$(echo "$CRONKEEPER_SCHEDULED_FOR" | cut -c18-19); [ $(( (1$S - 100) / 5 % 2 )) -eq 0 ] || exit 3'
FINAL = ("succeeded", "failed", "timed_out", "cancelled", "skipped", "missed", "lost")
ALERT_LINE = re.compile(r"^ALERT (\d+)$", re.MULTILINE)


def jobs(starts_log: Path) -> list[dict[str, Any]]:
    """Every second, every five seconds and cron; quick, slow (past their next fire), failing, retried."""

    def command(work: str) -> list[str]:
        return ["sh", "-c", f"{STARTS}; {work}", str(starts_log)]

    return [
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
        {"id": "py-sleep", "every": "2s", "call": "time:sleep", "args": [0.2]},
    ]


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
    process: subprocess.Popen[bytes] | None = None
    pids: list[int] = field(default_factory=list)
    stopped: bool = False

    def start(self) -> None:
        log = (self.workdir / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT)
        self.pids.append(self.process.pid)

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

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
    kind: str  # "kill", "stop", "restart-db"
    node: str
    at: datetime
    pid: int = 0
    ended_at: datetime | None = None


@dataclass
class Chaos:
    """What was done, and what the database said while it was done."""

    events: list[Event] = field(default_factory=list)
    first_final: dict[int, str] = field(default_factory=dict)
    poll_errors: int = 0

    def poll(self, engine: Engine) -> None:
        """Note the first final status of each run that ended lately (a later change is a late overwrite)."""
        since = datetime.now(UTC) - timedelta(seconds=120)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT id, status FROM ck_runs WHERE finished_at > :since"),
                    {"since": since},
                ).all()
        except Exception:  # the database restarting: the next poll sees the same rows
            self.poll_errors += 1
            return
        for run_id, status in rows:
            if status in FINAL:
                self.first_final.setdefault(run_id, status)


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    # One line per alert a message carries, whether listed in full or only counted: each can be checked off.
    (templates / "body.txt").write_text(
        "{% for a in alerts %}ALERT {{ a.alert_id }}\n{% endfor %}"
        "{% for m in more %}{% for i in m.alert_ids %}ALERT {{ i }}\n{% endfor %}{% endfor %}"
    )
    toml = workdir / "cronkeeper.toml"
    toml.write_text(config(db_url, starts_log, templates, sink))
    argv = [str(CRONKEEPER), "--config", str(toml), "serve", "--no-web", "--log-level", "warning"]
    nodes = [Node(f"node{number}", argv, workdir) for number in range(1, count + 1)]
    engine = create_engine(db_url.replace("postgresql://", "postgresql+psycopg://", 1))
    chaos = Chaos()
    try:
        nodes[0].start()  # the first creates the schema; the others join it
        wait_for(lambda: table_exists(engine), 60, "the first node to create the schema")
        for node in nodes[1:]:
            node.start()
        wait_for(lambda: live_nodes(engine) >= count, 60, "every node to heartbeat")
        window_start = now() + timedelta(seconds=2)
        chaos_until = time.monotonic() + duration
        act(nodes, cluster, chaos, engine, rng, every, chaos_until)
        window_end = now()
        for node in nodes:  # every node back and running
            if node.stopped:
                node.signal(signal.SIGCONT)
                node.stopped = False
            if not node.alive:
                node.start()
        settle = LEASE + 3 * HEARTBEAT + 25  # the lease, and the longest job (20 s) started just before
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            chaos.poll(engine)
            time.sleep(1)
        checked_at = now()
        wait_for(lambda: alerts_settled(engine), 90, "the alerts to be delivered", fail=False)
        crashed = [node.name for node in nodes if not node.alive]
        figures = check(engine, chaos, starts_log, sink, window_start, window_end, checked_at)
    finally:
        statuses = {node.name: node.stop() for node in nodes}
        engine.dispose()
    figures["nodes_that_died_on_their_own"] = crashed
    figures["exit_statuses"] = statuses
    bad_exits = {name: code for name, code in statuses.items() if code not in (0, None)}
    figures["tracebacks_in_node_logs"] = sum(
        (workdir / f"{node.name}.log").read_text(errors="replace").count("Traceback") for node in nodes
    )
    figures["ok"] = figures["ok"] and not crashed and not bad_exits
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
    """Faults until ``until``: a kill -9 (the node back 3-8 s later) or a SIGSTOP past the lease, in turn;
    a database restart half-way."""
    start = time.monotonic()
    restart_db_at = start + (until - start) / 2 if cluster is not None else None
    next_fault = start + rng.uniform(*every) / 2
    later: list[tuple[float, Callable[[], None]]] = []
    kinds = ["kill", "stop"]
    rng.shuffle(kinds)
    turn = 0
    while time.monotonic() < until:
        moment = time.monotonic()
        for item in [item for item in later if item[0] <= moment]:
            later.remove(item)
            item[1]()
        if restart_db_at is not None and moment >= restart_db_at and cluster is not None:
            restart_db_at = None
            event = Event("restart-db", "postgres", now())
            cluster.restart()
            event.ended_at = now()
            chaos.events.append(event)
            print(
                f"chaos: {event.at:%H:%M:%S} PostgreSQL restarted "
                f"({(event.ended_at - event.at).total_seconds():.1f} s)"
            )
        if moment >= next_fault:
            next_fault = moment + rng.uniform(*every)
            healthy = [node for node in nodes if node.alive and not node.stopped]
            kind = kinds[turn % 2]
            turn += 1
            if kind == "stop" and len(healthy) < 2:
                kind = "kill"
            if healthy and (kind == "kill" or len(healthy) >= 2):
                node = rng.choice(healthy)
                later.append(fault(kind, node, chaos, rng))
        chaos.poll(engine)
        time.sleep(0.5)
    for _, finish in sorted(later, key=lambda item: item[0]):
        finish()


def fault(kind: str, node: Node, chaos: Chaos, rng: random.Random) -> tuple[float, Callable[[], None]]:
    """Do the fault now; return when and how it ends."""
    assert node.process is not None
    event = Event(kind, node.name, now(), pid=node.process.pid)
    chaos.events.append(event)
    if kind == "kill":
        node.signal(signal.SIGKILL)
        node.process.wait()
        back_in = rng.uniform(3, 8)
        print(f"chaos: {event.at:%H:%M:%S} kill -9 {node.name} (pid {event.pid}), back in {back_in:.0f} s")

        def bring_back() -> None:
            node.start()
            event.ended_at = now()

        return time.monotonic() + back_in, bring_back
    node.signal(signal.SIGSTOP)
    node.stopped = True
    held = LEASE + 2 * HEARTBEAT + rng.uniform(0, 3)
    print(f"chaos: {event.at:%H:%M:%S} SIGSTOP {node.name} (pid {event.pid}) for {held:.0f} s")

    def carry_on() -> None:
        node.signal(signal.SIGCONT)
        node.stopped = False
        event.ended_at = now()

    return time.monotonic() + held, carry_on


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


def alerts_settled(engine: Engine) -> bool:
    with engine.connect() as conn:
        waiting = conn.execute(text("SELECT count(*) FROM ck_alerts WHERE status IN ('pending', 'sending')"))
        return int(waiting.scalar_one()) == 0


def aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def check(
    engine: Engine,
    chaos: Chaos,
    starts_log: Path,
    sink: WebhookSink,
    window_start: datetime,
    window_end: datetime,
    checked_at: datetime,
) -> dict[str, Any]:
    with engine.connect() as conn:
        runs = conn.execute(
            text(
                "SELECT id, job_id, scheduled_for, attempt, status, owner, queued_at, started_at,"
                " finished_at, due_at, result, trigger_source FROM ck_runs"
            )
        ).all()
        specs = {row.id: row.spec for row in conn.execute(text("SELECT id, spec FROM ck_jobs")).all()}
        nodes = conn.execute(text("SELECT id, pid FROM ck_nodes")).all()
        alerts = conn.execute(text("SELECT id, status, kind FROM ck_alerts")).all()
    by_status = Counter(run.status for run in runs)
    keys = Counter((run.job_id, aware(run.scheduled_for), run.attempt) for run in runs)
    duplicate_rows = sorted(str(key) for key, seen in keys.items() if seen > 1)

    executed = Counter(
        tuple(line.split()[:3]) for line in starts_log.read_text().splitlines() if line.strip()
    )
    duplicate_executions = sorted(" ".join(key) for key, seen in executed.items() if seen > 1)

    lost_slots, fires = unrecorded_fires(runs, specs, window_start, window_end)

    stuck = [
        run.id
        for run in runs
        if (run.status == "running" and aware(run.started_at) < checked_at - timedelta(seconds=LEASE + 30))
        or (run.status == "queued" and aware(run.due_at) < checked_at - timedelta(seconds=LEASE + 5))
    ]
    final_now = {run.id: run.status for run in runs}
    overwritten = sorted(
        f"run {run_id}: {first} then {final_now.get(run_id)}"
        for run_id, first in chaos.first_final.items()
        if final_now.get(run_id) != first
    )

    received = Counter(
        int(number) for post in sink.posts for number in ALERT_LINE.findall(post.get("message", ""))
    )
    alert_status = Counter(alert.status for alert in alerts)
    undelivered = [alert.id for alert in alerts if alert.status != "delivered"]
    never_received = [
        alert.id for alert in alerts if alert.status == "delivered" and alert.id not in received
    ]
    sent_twice = sorted(number for number, seen in received.items() if seen > 1)

    pids: dict[int, list[str]] = {}
    for node in nodes:
        pids.setdefault(node.pid, []).append(node.id)
    to_lost = [time_to_lost(event, chaos.events, runs, pids) for event in chaos.events]
    to_lost = [seconds for seconds in to_lost if seconds]
    checks = {
        "duplicate run rows": duplicate_rows,
        "duplicate executions": duplicate_executions,
        "fires neither run nor recorded": lost_slots,
        "runs left running or queued past the lease": stuck,
        "final statuses overwritten": overwritten,
        "alerts not delivered": undelivered,
        "alerts delivered but never received": never_received,
    }
    return {
        "ok": not any(checks.values()),
        "checks": {name: {"count": len(found), "first": found[:10]} for name, found in checks.items()},
        "fires_in_window": fires,
        "window": [window_start.isoformat(), window_end.isoformat()],
        "runs": len(runs),
        "runs_by_status": dict(sorted(by_status.items())),
        "executions": sum(executed.values()),
        "kills": sum(event.kind == "kill" for event in chaos.events),
        "stops": sum(event.kind == "stop" for event in chaos.events),
        "database_restarts": sum(event.kind == "restart-db" for event in chaos.events),
        "events": [
            {
                "kind": e.kind,
                "node": e.node,
                "at": e.at.isoformat(),
                "ended_at": e.ended_at and e.ended_at.isoformat(),
            }
            for e in chaos.events
        ],
        "longest_to_lost_s": round(max(to_lost), 1) if to_lost else None,
        "to_lost_s": [round(value, 1) for value in to_lost],
        "alerts": len(alerts),
        "alerts_by_status": dict(alert_status),
        "alerts_received_more_than_once": len(sent_twice),
        "messages_received": len(sink.posts),
        "poll_errors": chaos.poll_errors,
    }


def time_to_lost(event: Event, events: list[Event], runs: Sequence[Any], pids: dict[int, list[str]]) -> float:
    """Seconds from a kill or stop to the last of the runs the node held then being marked lost (0: none)."""
    if event.kind not in ("kill", "stop"):
        return 0.0
    owners = set(pids.get(event.pid, ()))
    later = [other.at for other in events if other.pid == event.pid and other.at > event.at]
    until = min(later, default=datetime.max.replace(tzinfo=UTC))
    marked = [
        (aware(run.finished_at) - event.at).total_seconds()
        for run in runs
        if run.owner in owners
        and run.status == "lost"
        and aware(run.queued_at) <= event.at <= aware(run.finished_at) < until
    ]
    return max(marked, default=0.0)


def unrecorded_fires(
    runs: Sequence[Any], specs: dict[str, Any], window_start: datetime, window_end: datetime
) -> tuple[list[str], int]:
    """The fires of each scheduled job in the window that no run row and no ``missed`` summary holds."""
    recorded: dict[str, set[datetime]] = {}
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
        if job_id.startswith("cronkeeper."):
            continue
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
        f"commands executed: {figures['executions']}"
    )
    print(f"runs by status: {figures['runs_by_status']}")
    print(
        f"faults: {figures['kills']} kill -9, {figures['stops']} SIGSTOP past the lease, "
        f"{figures['database_restarts']} database restart(s)"
    )
    print(
        f"longest time from a fault to the node's runs marked lost: {figures['longest_to_lost_s']} s "
        f"(each: {figures['to_lost_s']})"
    )
    print(
        f"alerts: {figures['alerts']} {figures['alerts_by_status']}, "
        f"messages {figures['messages_received']}, "
        f"received more than once: {figures['alerts_received_more_than_once']}"
    )
    for name, found in figures["checks"].items():
        verdict = "ok" if not found["count"] else f"FAILED: {found['count']} e.g. {found['first'][:3]}"
        print(f"  {name}: {verdict}")
    if figures.get("nodes_that_died_on_their_own"):
        print(f"  FAILED: nodes that died on their own: {figures['nodes_that_died_on_their_own']}")
    print(
        f"node exit statuses: {figures['exit_statuses']}; tracebacks in node logs: "
        f"{figures['tracebacks_in_node_logs']}"
    )
    print("chaos: every check held" if figures["ok"] else "chaos: FAILED")


if __name__ == "__main__":
    sys.exit(main())
