"""``cronkeeper users``, ``tokens`` and ``audit``, run for real in subprocesses against a SQLite file."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from cronkeeper.cli.main import cli as cronkeeper_cli
from cronkeeper.scheduler import Scheduler
from cronkeeper.services.accounts import AccountService
from tests.e2e.test_cli import USER, Cli

PASSWORD = "correct-horse-1"


@contextmanager
def accounts_of(cli: Cli) -> Iterator[AccountService]:
    """The accounts of the CLI's database, seen from this process as the web app sees them."""
    with Scheduler(cli.db_url, migrate=False) as scheduler:
        yield scheduler.accounts


def run_all(cli: Cli, *commands: tuple[Sequence[str], str]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands, each with its standard input, at once."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: cli(*command[0], stdin=command[1]), commands))


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def add_user(cli: Cli, name: str, *options: str, password: str = PASSWORD) -> str:
    result = cli("users", "add", name, *options, "--password-stdin", stdin=f"{password}\n")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return result.stdout


# ---- users ----------------------------------------------------------------------------------------------


def test_users_add_list_passwd_and_remove_with_the_password_read_from_stdin(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    alice, bob = run_all(
        cli,
        (["users", "add", "alice", "--role", "admin", "--password-stdin"], f"{PASSWORD}\n"),
        (["users", "add", "bob", "--password-stdin"], f"{PASSWORD}\r\n"),
    )

    assert (alice.returncode, alice.stdout) == (0, "added user alice (admin)\n")
    assert (bob.returncode, bob.stdout) == (0, "added user bob (viewer)\n"), "a viewer unless asked"

    listed = cli.json("users", "list")
    assert [(user["username"], user["role"]) for user in listed] == [("alice", "admin"), ("bob", "viewer")]
    assert all(user["created_at"] == user["password_changed_at"] for user in listed)
    with accounts_of(cli) as accounts:
        user = accounts.authenticate("alice", PASSWORD)
        assert user is not None
        grant = accounts.start_session(user, lifetime=timedelta(hours=1))

        changed = cli("users", "passwd", "alice", "--password-stdin", stdin="a-new-password\n")

        assert (changed.returncode, changed.stdout) == (
            0,
            "changed the password of alice; their sessions have ended\n",
        )
        assert accounts.authenticate("alice", PASSWORD) is None
        assert accounts.authenticate("alice", "a-new-password") is not None
        assert accounts.session(grant.secret) is None, "a new password logs the user out everywhere"

    assert cli.fails(1, "users", "remove", "bob", stdin="n\n").endswith("aborted\n")
    assert cli.ok("users", "remove", "bob", "--yes") == "removed user bob\n"
    assert [user["username"] for user in cli.json("users", "list")] == ["alice"]


def test_users_add_asks_for_the_password_twice_without_echo_and_again_when_it_is_short(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    # In-process: a subprocess has no terminal to ask on.  Too short, then two that differ, then a match.
    typed = "short\n" + "long-enough-1\nlong-enough-2\n" + "long-enough-1\nlong-enough-1\n"

    result = CliRunner().invoke(cronkeeper_cli, ["--db", db, "users", "add", "carol"], input=typed)

    assert result.exit_code == 0, result.output
    assert "long-enough" not in result.output, "hidden input"
    assert "at least 8 characters" in result.output
    assert "The two entered values do not match" in result.output
    assert result.output.endswith("added user carol (viewer)\n")
    with Scheduler(db, migrate=False) as scheduler:
        accounts = scheduler.accounts
        assert accounts.authenticate("carol", "long-enough-1") is not None


def test_bad_input_exits_2_naming_the_field_and_unknown_accounts_exit_1_writing_nothing(cli: Cli) -> None:
    add_user(cli, "alice")
    cli.json("tokens", "create", "ci")

    short, taken, bad_name, token_taken, bad_role, *unknown = run_all(
        cli,
        (["users", "add", "bob", "--password-stdin"], "short\n"),
        (["users", "add", "alice", "--password-stdin"], f"{PASSWORD}\n"),
        (["users", "add", "bob smith", "--password-stdin"], f"{PASSWORD}\n"),
        (["tokens", "create", "ci"], ""),
        (["users", "add", "bob", "--role", "owner", "--password-stdin"], f"{PASSWORD}\n"),
        (["users", "passwd", "ghost", "--password-stdin"], f"{PASSWORD}\n"),
        (["users", "remove", "ghost", "--yes"], ""),
        (["tokens", "revoke", "ghost"], ""),
    )

    assert [(result.returncode, result.stdout, result.stderr) for result in (short, taken, token_taken)] == [
        (2, "", "error: password: must have at least 8 characters\n"),
        (2, "", "error: username: 'alice' is taken\n"),
        (2, "", "error: name: a token named 'ci' exists\n"),
    ]
    assert bad_name.returncode == 2
    assert bad_name.stderr.startswith("error: username: use 1-100 letters")
    assert bad_role.returncode == 2
    assert "'owner' is not one of 'admin', 'viewer'" in bad_role.stderr
    assert [(result.returncode, result.stdout, result.stderr) for result in unknown] == [
        (1, "", "error: user 'ghost' not found\n"),
        (1, "", "error: user 'ghost' not found\n"),
        (1, "", "error: token 'ghost' not found\n"),
    ]
    assert [user["username"] for user in cli.json("users", "list")] == ["alice"]
    assert [token["name"] for token in cli.json("tokens", "list")] == ["ci"]


# ---- tokens ---------------------------------------------------------------------------------------------


def test_tokens_create_prints_the_secret_once_it_authenticates_list_never_shows_it_and_revoke_ends_it(
    cli: Cli,
) -> None:
    created = cli.json("tokens", "create", "ci")
    deploy = cli("tokens", "create", "deploy", "--role", "admin")

    assert (created["name"], created["role"]) == ("ci", "viewer")
    assert deploy.returncode == 0, deploy.stderr
    secret = deploy.stdout.strip()
    assert deploy.stdout == f"{secret}\n", "the secret alone on stdout, for $(…)"
    assert "cannot be shown again" in deploy.stderr
    with accounts_of(cli) as accounts:
        ci = accounts.verify_token(created["token"])
        admin = accounts.verify_token(secret)
        assert ci is not None
        assert admin is not None
        assert (ci.name, ci.role.value, admin.name, admin.role.value) == ("ci", "viewer", "deploy", "admin")

        listed, table = cli.many(["tokens", "list", "--json"], ["tokens", "list"])

        for output in (listed.stdout, table.stdout):
            assert created["token"] not in output
            assert secret not in output
        rows = json_of(listed)
        assert [(token["name"], token["role"], token["created_by"]) for token in rows] == [
            ("ci", "viewer", USER),
            ("deploy", "admin", USER),
        ]
        assert rows[0]["last_used_at"] is not None, "verified above"

        assert cli.ok("tokens", "revoke", "ci") == "revoked token ci\n"
        assert accounts.verify_token(created["token"]) is None
        assert accounts.verify_token(secret) is not None


# ---- audit ----------------------------------------------------------------------------------------------


def test_audit_lists_what_the_cli_did_newest_first_with_the_os_user_as_actor(cli: Cli) -> None:
    cli.ok("db", "upgrade")
    setup = run_all(
        cli,
        (["users", "add", "alice", "--password-stdin"], f"{PASSWORD}\n"),
        (["tokens", "create", "ci", "--json"], ""),
        (["jobs", "add", "tick", "--every", "1h", "--command", "true"], ""),
    )
    assert all(result.returncode == 0 for result in setup), [result.stderr for result in setup]
    cli.ok("tokens", "revoke", "ci")

    everything, users, limited, table = cli.many(
        ["audit", "--json"],
        ["audit", "--object-type", "user", "--object-id", "alice", "--actor", USER, "--json"],
        ["audit", "--limit", "1", "--json"],
        ["audit"],
    )

    events = json_of(everything)
    assert [event["id"] for event in events] == sorted((event["id"] for event in events), reverse=True)
    assert events[0]["action"] == "delete", "newest first"
    assert sorted((e["actor"], e["via"], e["action"], e["object_type"], e["object_id"]) for e in events) == [
        (USER, "cli", "create", "job", "tick"),
        (USER, "cli", "create", "token", "ci"),
        (USER, "cli", "create", "user", "alice"),
        (USER, "cli", "delete", "token", "ci"),
    ]
    by_object = {(event["object_type"], event["action"]): event for event in events}
    assert by_object["token", "create"]["details"] == {"role": "viewer"}
    assert [event["action"] for event in json_of(users)] == ["create"]
    assert json_of(limited) == events[:1]
    row = next(line for line in table.stdout.splitlines() if "user alice" in line)
    assert row.split()[2:6] == [USER, "cli", "create", "user"], "id, time, actor, source, action, object"
