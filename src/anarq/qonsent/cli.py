"""`anarq consent …`: grant, revoke, list and check permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
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
)

app = typer.Typer(no_args_is_help=True)
GRANT_COLUMNS = ["id", "grantee", "resource", "actions", "purpose", "expires_at", "revoked_at"]


def parse_duration(text: str) -> timedelta:
    """`30m`, `12h`, `7d`, `2w` → a duration."""
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.isdigit() or int(number) <= 0:
        raise typer.BadParameter(f"{text!r} is not a duration like 30m, 12h, 7d or 2w")
    return timedelta(**{units[unit]: int(number)})


@app.command("grant")
def grant(
    grantee: str = typer.Argument(..., help='A DID, or "public".'),
    resource: str = typer.Argument(..., help="module:type:id, or a pattern ending in :*"),
    actions: str = typer.Option(
        "read", help="Comma-separated: read,write,delete,share,admin,execute."
    ),
    purpose: str = typer.Option(..., help="Why this access is given."),
    expires: str | None = typer.Option(None, help="Lifetime, e.g. 7d, 12h."),
    max_uses: int | None = typer.Option(None, min=1, help="How many times it may be used."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give GRANTEE ACTIONS on RESOURCE, for a PURPOSE, until it expires or is revoked."""
    body: dict[str, object] = {
        "grantee": grantee,
        "resource": resource,
        "actions": [a.strip() for a in actions.split(",") if a.strip()],
        "purpose": purpose,
    }
    if expires:
        body["expires_at"] = (datetime.now(UTC) + parse_duration(expires)).isoformat()
    if max_uses:
        body["max_uses"] = max_uses
    with client(url, token, need_token=True) as node:
        created = node.request("POST", "/qonsent/grants", json=body)
    emit_json(created) if as_json else emit_fields(created)


@app.command("revoke")
def revoke(
    grant_id: str = typer.Argument(..., help="Id of the grant."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Revoke a grant; it stops allowing anything at once."""
    with client(url, token, need_token=True) as node:
        node.request("DELETE", f"/qonsent/grants/{grant_id}")
    typer.echo(f"revoked {grant_id}")


@app.command("ls")
def ls(
    resource: str | None = typer.Option(None, help="Who can access this resource."),
    actor: str | None = typer.Option(None, help="What this actor can access."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List grants: on a resource (--resource), held by an actor (--actor), or made by me."""
    with client(url, token, need_token=True) as node:
        if resource:
            rows = node.request("GET", "/qonsent/who-can", params={"resource": resource})
        elif actor:
            rows = node.request("GET", "/qonsent/what-can", params={"actor": actor})
        else:
            rows = node.request("GET", "/qonsent/granted")
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            row["actions"] = ",".join(row["actions"])
        emit_table(rows, GRANT_COLUMNS, title="grants")


@app.command("check")
def check(
    action: str = typer.Argument(..., help="read, write, delete, share, admin or execute."),
    resource: str = typer.Argument(..., help="module:type:id"),
    actor: str | None = typer.Option(None, help="Whose access to check [default: mine]."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Say whether ACTION on RESOURCE is allowed, and which rule decided. Exit 1 if denied."""
    params = {"action": action, "resource": resource, **({"actor": actor} if actor else {})}
    with client(url, token, need_token=True) as node:
        decision = node.request("GET", "/qonsent/check", params=params)
    emit_json(decision) if as_json else emit_fields(decision)
    if not decision["allowed"]:
        raise typer.Exit(1)


@app.command("receipt")
def receipt(
    grant_id: str = typer.Argument(..., help="Id of the grant."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write it to a file."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Fetch a grant's signed consent receipt."""
    with client(url, token, need_token=True) as node:
        document = node.request("GET", f"/qonsent/grants/{grant_id}/receipt")
    text = json.dumps(document, indent=2, sort_keys=True)
    if output:
        output.write_text(text)
        typer.echo(f"receipt written to {output}")
    else:
        typer.echo(text)


@app.command("verify")
def verify(
    receipt_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A receipt from `anarq consent receipt`."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a consent receipt offline: who consented to what, signed by which node."""
    from anarq.qonsent.receipts import ReceiptInvalid
    from anarq.qonsent.receipts import verify as verify_receipt

    try:
        check = verify_receipt(json.loads(receipt_file.read_text()))
    except (ReceiptInvalid, ValueError) as exc:
        typer.echo(f"INVALID: {exc}", err=True)
        raise typer.Exit(1) from None
    values = {"valid": True, **check.__dict__, "audit_resource": f"qonsent:receipt:{check.digest}"}
    emit_json(values) if as_json else emit_fields(values)
