"""Following and stopping runs from the command line while `cronkeeper serve` runs them: `runs tail` prints a
command's output as it is written and exits with the run's verdict, `runs cancel` stops a running command,
`runs show` and `jobs list` print what people read."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import click
import pytest

from cronkeeper.cli.main import EXIT_INTERRUPTED, cli, run
from cronkeeper.cli.runs import unseen
from tests.e2e.test_cli import CRONKEEPER, Cli, seed, serve

SLOW_LINES = "for i in 1 2 3; do echo line $i; sleep 0.7; done"


def test_runs_tail_follows_a_run_and_runs_cancel_stops_one(cli: Cli) -> None:
    seed(
        cli,
        {"id": "lines", "cron": "0 0 1 1 *", "shell": True, "command": SLOW_LINES},
        {"id": "failing", "cron": "0 0 1 1 *", "shell": True, "command": "echo oops; exit 4"},
        {"id": "long", "cron": "0 0 1 1 *", "command": ["sleep", "60"]},
        {"id": "metrics", "cron": "0 0 1 1 *", "call": "cronkeeper.demo:count_items", "kwargs": {"items": 3}},
        {
            "id": "ticker",
            "cron": "0 0 1 1 *",
            "shell": True,
            "command": "while true; do echo tick; sleep 0.3; done",
        },
    )
    seen: dict[str, subprocess.CompletedProcess[str]] = {}
    # A cancel reaches serve at its next heartbeat.
    (cli.cwd / "cronkeeper.toml").write_text("[scheduler]\nheartbeat_interval = 1\n")

    def follow_and_cancel() -> bool:
        jobs = ("lines", "failing", "long")
        runs = {job: cli.json("jobs", "trigger", job, "--json")["run_id"] for job in jobs}
        seen["interrupted"] = interrupted_tail(cli, cli.json("jobs", "trigger", "ticker", "--json")["run_id"])
        seen["tail"] = tail(cli, runs["lines"])
        seen["tail failing"] = tail(cli, runs["failing"])
        seen["cancel"] = cli("runs", "cancel", str(runs["long"]))
        seen["tail cancelled"] = tail(cli, runs["long"])
        seen["cancel again"] = cli("runs", "cancel", str(runs["long"]))
        metrics = cli.json("jobs", "trigger", "metrics", "--json")["run_id"]
        tail(cli, metrics)
        seen["show"] = cli("runs", "show", str(metrics))
        seen["list"] = cli("jobs", "list")
        seen["list json"] = cli("jobs", "list", "--json")
        return True

    served = serve(cli, follow_and_cancel)
    assert served.returncode == 0, served.log

    # Killed by the SIGINT, as a shell needs to stop a loop of commands (it reports 130).
    assert seen["interrupted"].returncode == -signal.SIGINT, seen["interrupted"].stderr
    assert seen["interrupted"].stdout.startswith("tick\n") and "Traceback" not in seen["interrupted"].stderr
    followed = seen["tail"]
    assert (followed.returncode, followed.stdout) == (0, "line 1\nline 2\nline 3\n"), followed.stderr
    assert followed.stderr.strip().endswith("succeeded (exit code 0)")
    failing = seen["tail failing"]
    assert (failing.returncode, failing.stdout) == (1, "oops\n")
    assert "failed (exit code 4)" in failing.stderr
    assert seen["cancel"].returncode == 0 and "cancelling run" in seen["cancel"].stdout
    assert seen["tail cancelled"].returncode == 1 and "cancelled" in seen["tail cancelled"].stderr
    assert seen["cancel again"].returncode == 1
    assert "has already ended (cancelled)" in seen["cancel again"].stderr

    shown = {
        line.split(None, 1)[0]: line.split(None, 1)[1]
        for line in seen["show"].stdout.splitlines()
        if " " in line.strip()
    }
    assert json.loads(shown["result"])["items_processed"] == 3
    assert shown["duration_seconds"].endswith("s") and len(shown["duration_seconds"].split(".")[1]) == 4
    assert "LAST RUN" in seen["list"].stdout and "succeeded" in seen["list"].stdout
    listed = {job["id"]: job for job in json.loads(seen["list json"].stdout)}
    assert listed["lines"]["last_run"]["status"] == "succeeded"
    assert listed["long"]["last_run"]["status"] == "cancelled"


def interrupted_tail(cli: Cli, run_id: int) -> subprocess.CompletedProcess[str]:
    """``runs tail`` stopped by Ctrl-C once it printed the first line; then the run is cancelled."""
    argv = [str(CRONKEEPER), "runs", "tail", str(run_id), "--interval", "0.2"]
    with subprocess.Popen(
        argv, cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as tail:
        assert tail.stdout is not None and tail.stdout.readline() == "tick\n"
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=30)
    assert cli("runs", "cancel", str(run_id)).returncode == 0
    return subprocess.CompletedProcess(argv, tail.returncode, "tick\n" + out, err)


def tail(cli: Cli, run_id: int) -> subprocess.CompletedProcess[str]:
    return cli("runs", "tail", str(run_id), "--interval", "0.2")


def test_tail_prints_what_follows_once_the_kept_tail_moved_on() -> None:
    shown = "[... 10 earlier bytes truncated ...]\nabc\ndef\n"
    assert unseen("abc\n", "abc\ndef\n") == "def\n"
    assert unseen(shown, "[... 14 earlier bytes truncated ...]\ndef\nghi\n") == "ghi\n"
    assert unseen("tick\n" * 3, "[... 5 earlier bytes truncated ...]\n" + "tick\n" * 3) == "tick\n"
    assert unseen("x\ny\n", "x\ny\nz\n") == "z\n"
    gone = unseen("abc\n", "[... 99 earlier bytes truncated ...]\nxyz\n")
    assert gone == "\n[... output went by faster than it was followed ...]\nxyz\n"


def test_ctrl_c_at_a_prompt_is_an_interruption_and_no_is_an_abort(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """click raises Abort from None at a prompt: the KeyboardInterrupt is only its context."""
    db = f"sqlite:///{tmp_path / 'ck.db'}"
    assert run(cli.main, ["--db", db, "jobs", "add", "j", "--cron", "0 3 * * *", "--command", "true"]) == 0

    def interrupted(_prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(click.termui, "visible_prompt_func", interrupted)
    assert run(cli.main, ["--db", db, "jobs", "remove", "j"]) == EXIT_INTERRUPTED
    monkeypatch.setattr(click.termui, "visible_prompt_func", lambda _prompt: "n")
    assert run(cli.main, ["--db", db, "jobs", "remove", "j"]) == 1
    assert "aborted" in capsys.readouterr().err
