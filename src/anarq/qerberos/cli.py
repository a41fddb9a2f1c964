"""`anarq audit …`: the node's verifiable audit log."""

from __future__ import annotations

import base64
import json
from datetime import datetime
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
from anarq.qerberos import merkle

app = typer.Typer(no_args_is_help=True)


@app.command("head")
def head(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The latest signed tree head."""
    with client(url) as node:
        values = node.request("GET", "/qerberos/tree-head")
    if as_json:
        emit_json(values)
    else:
        values.pop("signer_key", None)
        emit_fields(values)


@app.command("export")
def export(
    output: Path = typer.Option(..., "-o", "--output", help="File to write."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Download the whole log, for `anarq audit verify` (operator)."""
    with client(url, token, need_token=True) as node:
        document = node.request("GET", "/qerberos/export")
    output.write_text(json.dumps(document, separators=(",", ":")))
    typer.echo(
        f"{len(document['leaves'])} entries, {len(document['tree_heads'])} tree heads → {output}"
    )


@app.command("verify")
def verify(
    export_file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="A file from `anarq audit export`."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Check an exported log offline: every leaf in every signed head, heads append-only."""
    from anarq.qerberos.verify import AuditVerificationFailed, verify_export

    try:
        report = verify_export(json.loads(export_file.read_text()))
    except (AuditVerificationFailed, json.JSONDecodeError) as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(1) from None
    values = {"verified": True, **report.__dict__}
    emit_json(values) if as_json else emit_fields(values)


@app.command("proof")
def proof(
    seq: int = typer.Argument(..., help="The entry's sequence number."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print an entry's inclusion proof and check it, and the head's signature, locally."""
    from anarq.qerberos.service import tree_head_bytes
    from anarq.qlock import VerifyKey, decode_signature
    from anarq.qlock import verify as verify_signature

    with client(url, token, need_token=True) as node:
        values = node.request("GET", f"/qerberos/entries/{seq}/proof")
    head_values = values["tree_head"]
    root = base64.b64decode(head_values["root"])
    included = merkle.verify_inclusion(
        base64.b64decode(values["leaf_hash"]),
        values["leaf_index"],
        values["tree_size"],
        [base64.b64decode(step) for step in values["proof"]],
        root,
    )
    key = VerifyKey.from_bytes(base64.b64decode(head_values["signer_key"]))
    time = datetime.fromisoformat(head_values["time"].replace("Z", "+00:00"))
    signed = tree_head_bytes(head_values["signer"], head_values["size"], root, time)
    verify_signature(key, signed, decode_signature(head_values["signature"]))
    if as_json:
        emit_json({**values, "verified": included})
    else:
        emit_fields(
            {
                "entry": seq,
                "leaf_index": values["leaf_index"],
                "tree_size": values["tree_size"],
                "proof_hashes": len(values["proof"]),
                "included": included,
                "head_signature": "valid",
            }
        )
    if not included:
        raise typer.Exit(1)


@app.command("mine")
def mine(
    url: str | None = URL_OPTION, token: str | None = TOKEN_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """My own audit trail: what was done as me, allowed or denied."""
    with client(url, token, need_token=True) as node:
        rows = node.request("GET", "/qerberos/mine")
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["seq", "time", "action", "resource", "verdict"], title="audit entries")


security = typer.Typer(
    no_args_is_help=True, help="Security alerts and risk: the guard at the door."
)


@security.command("alerts")
def list_alerts(
    status: str | None = typer.Option(None, help="active, investigating or resolved."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Security alerts, newest first (operator)."""
    with client(url, token, need_token=True) as node:
        rows = node.request("GET", "/qerberos/alerts", params={"status": status} if status else {})
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows,
            ["id", "kind", "subject", "severity", "status", "count", "updated_at"],
            title="alerts",
        )


@security.command("set")
def set_status(
    alert_id: str = typer.Argument(..., help="Alert id."),
    status: str = typer.Argument(..., help="investigating or resolved."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Move an alert to investigating or resolved (operator)."""
    with client(url, token, need_token=True) as node:
        node.request("PATCH", f"/qerberos/alerts/{alert_id}", json={"status": status})
    typer.echo(f"{alert_id} is {status}")


@security.command("risk")
def risk(
    subject: str = typer.Argument(..., help="An identity's DID."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """An identity's risk score, 0 to 1000, with the reasons."""
    with client(url, token, need_token=True) as node:
        values = node.request("GET", f"/qerberos/risk/{subject}")
    if as_json:
        emit_json(values)
    else:
        emit_fields({**values, "reasons": "; ".join(values["reasons"])})
