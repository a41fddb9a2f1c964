"""`anarq reputation …`: your score and its reasons, signed by the node to present
anywhere; lending part of it to your sub-identities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table
from anarq.qwallet.cli import IDENTITY_OPTION
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)


@app.command("show")
def show(
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the signed credential to this file (to present it)."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your score (0 to 1,000) and where every point comes from."""
    with signed_client(url, identity) as node:
        scored: dict[str, Any] = node.request("GET", "/reputation/me")
    if output is not None:
        output.write_text(json.dumps(scored["credential"], indent=2) + "\n")
    if as_json:
        emit_json(scored)
        return
    console.print(f"[bold]{scored['score']}[/bold] of {scored['scale']}  ({scored['did']})")
    emit_table(scored["factors"], ["factor", "points", "detail"], title="reasons")
    if output is not None:
        console.print(f"signed credential written to {output} (check it: anarq vc verify)")


@app.command("link")
def link(
    sub: str = typer.Argument(..., help="Your sub-identity's DID."),
    share: float = typer.Option(50, "--share", help="Percent of your score it starts with."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Let a sub-identity start from a share of your score (this shows the link to the
    node's scoring, never to others: its credential names only the points)."""
    with signed_client(url, identity) as node:
        node.request("PUT", f"/reputation/links/{sub}", json={"share_pct": share})
    console.print(f"{sub} now starts from {share:g} % of your score")


@app.command("unlink")
def unlink(
    sub: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Stop lending your score to a sub-identity."""
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/reputation/links/{sub}")
    console.print(f"{sub} no longer shares your score")
