"""``cronkeeper tokens``: API tokens for scripts and other services."""

from __future__ import annotations

import click

from cronkeeper.cli.context import AppContext, cli_actor, pass_app
from cronkeeper.cli.output import console, print_json, table, when
from cronkeeper.exceptions import ValidationError
from cronkeeper.models import Role
from cronkeeper.serialize import iso

ROLES = click.Choice([role.value for role in Role])


@click.group()
def tokens() -> None:
    """Manage API tokens (sent as "Authorization: Bearer TOKEN")."""


@tokens.command("create")
@click.argument("name")
@click.option("--role", type=ROLES, default=Role.VIEWER.value, show_default=True, help="What it may do.")
@click.option("--json", "as_json", is_flag=True, help='Print {"name", "role", "token"}.')
@pass_app
def create_token(app: AppContext, name: str, role: str, as_json: bool) -> None:
    """Create a token and print its secret, this once: only a hash of it is stored."""
    accounts = app.accounts()
    # Checked here too: the store reports a taken name as a database error, not as bad input.
    if any(token.name == name for token in accounts.list_tokens()):
        raise ValidationError("name", f"a token named {name!r} exists")
    token, secret = accounts.create_token(name, role, actor=cli_actor())
    if as_json:
        print_json({"name": token.name, "role": token.role.value, "token": secret})
        return
    # The secret alone on stdout, so that `TOKEN=$(cronkeeper tokens create ci)` captures just it.
    click.echo(secret)
    click.echo(
        f"created token {token.name} ({token.role.value}); store the secret now: it cannot be shown again",
        err=True,
    )


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
@pass_app
def list_tokens(app: AppContext, as_json: bool) -> None:
    """Every token, by name; secrets are never shown."""
    found = app.accounts().list_tokens()
    if as_json:
        print_json(
            [
                {
                    "name": token.name,
                    "role": token.role.value,
                    "created_by": token.created_by,
                    "created_at": iso(token.created_at),
                    "last_used_at": iso(token.last_used_at),
                }
                for token in found
            ]
        )
        return
    out = table("NAME", "ROLE", "CREATED BY", "CREATED (UTC)", "LAST USED (UTC)")
    for token in found:
        out.add_row(
            token.name,
            token.role.value,
            token.created_by or "-",
            when(token.created_at),
            when(token.last_used_at),
        )
    console.print(out)


@tokens.command("revoke")
@click.argument("name")
@pass_app
def revoke_token(app: AppContext, name: str) -> None:
    """Delete a token: requests carrying it are refused from now on."""
    app.accounts().revoke_token(name, actor=cli_actor())
    click.echo(f"revoked token {name}")
