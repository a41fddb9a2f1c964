"""`anarq privacy …`: get a copy of everything the node holds about you, or erase it."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json
from anarq.qdrive.cli import IDENTITY_OPTION, save_stream
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)


@app.command("export")
def export(
    output: Path = typer.Option(..., "-o", "--output", help="The .zip file to write."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Download everything the node holds about you: records as JSON, your files
    decrypted, and a manifest of SHA-256s signed by the node."""
    with signed_client(url, identity) as node, node.stream("GET", "/privacy/export") as response:
        save_stream(response, output, "export")
    console.print(f"wrote {output} ({output.stat().st_size} bytes)")


@app.command("erase")
def erase(
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    receipt: Path | None = typer.Option(None, "--receipt", help="Where to save the receipt."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Erase everything the node holds about you — files shredded, grants revoked, the
    identity revoked — and get a receipt signed by the node. This cannot be undone."""
    with signed_client(url, identity) as node:
        did = node.signer.did if node.signer else ""
        if not yes:
            typer.confirm(f"Erase everything about {did} on {node.url}? This is final", abort=True)
        result = node.request("POST", "/privacy/erase", json={"confirm": did})
    if receipt is not None:
        receipt.write_text(json.dumps(result, indent=2))
    if as_json:
        emit_json(result)
        return
    for module, counts in result["erased"].items():
        done = ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing held"
        console.print(f"{module}: {done}")
    console.print(
        "receipt signed by " + result["node"] + (f", saved to {receipt}" if receipt else "")
    )
