"""``cronkeeper users``: the accounts that log in to the dashboard."""

from __future__ import annotations

import sys

import click

from cronkeeper.cli.context import AppContext, cli_actor, pass_app
from cronkeeper.cli.output import console, print_json, table, when
from cronkeeper.exceptions import AccountNotFoundError, ValidationError
from cronkeeper.models import Role
from cronkeeper.serialize import iso
from cronkeeper.services.accounts import MIN_PASSWORD_LENGTH, AccountService

ROLES = click.Choice([role.value for role in Role if role is not Role.CHECKIN])


@click.group()
def users() -> None:
    """Manage dashboard users."""


def _password_option(func: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--password-stdin",
        is_flag=True,
        help="Read the password from the first line of standard input (for scripts) instead of asking.",
    )(func)


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin for scripts, else asked twice without echo, so that it never
    lands in the shell history or the process list."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt(
        "Password",
        hide_input=True,
        confirmation_prompt="Repeat the password",
        value_proc=_long_enough,
    )
    return value


def _long_enough(value: str) -> str:
    """Asks again at once instead of after the confirmation (the service checks again anyway)."""
    if len(value) < MIN_PASSWORD_LENGTH:
        raise click.UsageError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    return value


def _existing(accounts: AccountService, username: str) -> None:
    """Fail before asking for a password that could not be used."""
    if accounts.find_user(username) is None:
        raise AccountNotFoundError("user", username)


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=ROLES, default=Role.VIEWER.value, show_default=True, help="What the user may do."
)
@_password_option
@pass_app
def add_user(app: AppContext, username: str, role: str, password_stdin: bool) -> None:
    """Create a user who can log in to the dashboard; viewers read, admins also change."""
    accounts = app.accounts()
    # Before asking for a password; and the store reports a taken name as a database error, not bad input.
    if accounts.find_user(username) is not None:
        raise ValidationError("username", f"{username!r} is taken")
    user = accounts.add_user(username, read_password(password_stdin), role, actor=cli_actor())
    click.echo(f"added user {user.username} ({user.role.value})")


@users.command("passwd")
@click.argument("username")
@_password_option
@pass_app
def change_password(app: AppContext, username: str, password_stdin: bool) -> None:
    """Set a new password; the user's open sessions end."""
    accounts = app.accounts()
    _existing(accounts, username)
    accounts.set_password(username, read_password(password_stdin), actor=cli_actor())
    click.echo(f"changed the password of {username}; their sessions have ended")


@users.command("remove")
@click.argument("username")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def remove_user(app: AppContext, username: str, yes: bool) -> None:
    """Delete a user and end their sessions."""
    accounts = app.accounts()
    _existing(accounts, username)
    if not yes:
        click.confirm(f"Delete user {username}?", abort=True)
    accounts.remove_user(username, actor=cli_actor())
    click.echo(f"removed user {username}")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def list_users(app: AppContext, as_json: bool) -> None:
    """Every user with their role, by name."""
    found = app.accounts().list_users()
    if as_json:
        print_json(
            [
                {
                    "username": user.username,
                    "role": user.role.value,
                    "created_at": iso(user.created_at),
                    "password_changed_at": iso(user.password_changed_at),
                }
                for user in found
            ]
        )
        return
    out = table("USER", "ROLE", "CREATED (UTC)", "PASSWORD CHANGED (UTC)")
    for user in found:
        out.add_row(user.username, user.role.value, when(user.created_at), when(user.password_changed_at))
    console.print(out)
