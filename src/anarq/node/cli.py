"""`anarq node …`: the node's info, profile, workers and activity; operator tokens."""

from __future__ import annotations

import mimetypes
from pathlib import Path

import typer

from anarq.cli.output import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    client,
    emit_fields,
    emit_json,
    emit_table,
    plain,
    settings,
)
from anarq.kernel.guard import Context
from anarq.kernel.node import Node

app = typer.Typer(no_args_is_help=True)
tokens = typer.Typer(
    help="Operator tokens (local: works on this node's database directly).", no_args_is_help=True
)
app.add_typer(tokens, name="token")


@app.command("info")
def info(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """What the node is: name, version, backend, modules."""
    with client(url) as node:
        values = node.node_info()
    if as_json:
        emit_json(values)
    else:
        emit_fields({**values, "modules": ", ".join(values["modules"])})


@app.command("profile")
def profile(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The node's public profile."""
    with client(url) as node:
        values = node.node_profile()
    emit_json(values) if as_json else emit_fields(values)


@app.command("set-profile")
def set_profile(
    name: str | None = typer.Option(None, help="Display name of the node."),
    description: str | None = typer.Option(None, help="What this node is for."),
    contact: str | None = typer.Option(None, help="How to reach its operator."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Change the node's public profile (operator)."""
    changes = {
        k: v
        for k, v in {"name": name, "description": description, "contact": contact}.items()
        if v is not None
    }
    if not changes:
        raise typer.BadParameter("give at least one of --name, --description, --contact")
    with client(url, token, need_token=True) as node:
        values = node.update_node_profile(**changes)
    emit_json(values) if as_json else emit_fields(values)


@app.command("avatar")
def avatar(
    image: Path = typer.Argument(
        ...,
        exists=True,
        dir_okay=False,
        readable=True,
        help="PNG, JPEG, WebP or GIF, at most 2 MiB.",
    ),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Upload the node's avatar image (operator)."""
    media_type = mimetypes.guess_type(image.name)[0] or "application/octet-stream"
    with client(url, token, need_token=True) as node:
        values = node.set_node_avatar(image.read_bytes(), media_type)
    typer.echo(f"avatar set: {values['avatar_cid']}")


@app.command("workers")
def workers(
    include_stopped: bool = typer.Option(False, "--all", help="Include stopped workers."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Worker processes serving this node (operator)."""
    with client(url, token, need_token=True) as node:
        rows = node.node_workers(include_stopped=include_stopped)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["id", "url", "host", "pid", "alive", "last_seen_at"], title="workers")


@app.command("activity")
def activity(
    url: str | None = URL_OPTION, token: str | None = TOKEN_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Events dispatched on this node, counted by type (operator)."""
    with client(url, token, need_token=True) as node:
        rows = node.node_activity()
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["event_type", "count", "last_event_at"], title="events")


def _local_node() -> Node:
    from anarq.cli.up import prepare

    s = settings()
    prepare(s)
    return Node.open(s)


@tokens.command("create")
def token_create(
    label: str = typer.Option(..., help="What the token is for, e.g. 'laptop'."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a new operator token and print it once."""
    node = _local_node()
    try:
        issued = node.service("node").issue_operator_token(Context.system(), label)
    finally:
        node.close()
    if as_json:
        emit_json(issued)
    else:
        typer.echo(issued.token)


@tokens.command("ls")
def token_ls(as_json: bool = JSON_OPTION) -> None:
    """List operator tokens (never their secrets)."""
    node = _local_node()
    try:
        rows = plain(node.service("node").operator_tokens(Context.system()))
    finally:
        node.close()
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["id", "label", "created_at", "revoked_at"], title="operator tokens")


@tokens.command("revoke")
def token_revoke(
    token_id: str = typer.Argument(..., help="Id from `anarq node token ls`."),
) -> None:
    """Revoke an operator token at once."""
    node = _local_node()
    try:
        node.service("node").revoke_operator_token(Context.system(), token_id)
    finally:
        node.close()
    typer.echo(f"revoked {token_id}")
