"""How commands talk to people and scripts: tables for eyes, `--json` for pipes, one-line errors."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from anarq.kernel.settings import Settings, load_settings
from anarq.sdk import Client
from anarq.sdk.client import DEFAULT_URL

# No emoji codes: a DID (`did:key:z…`) would print with a key glyph in it.
console = Console(emoji=False)
errors = Console(stderr=True, soft_wrap=True, emoji=False)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON.")
URL_OPTION = typer.Option(
    None, "--url", envvar="ANARQ_URL", help=f"Node to talk to [default: {DEFAULT_URL}]."
)
TOKEN_OPTION = typer.Option(
    None,
    "--token",
    envvar="ANARQ_OPERATOR_TOKEN",
    help="Operator token [default: read from <data dir>/operator.token].",
)


def plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def emit_json(value: Any) -> None:
    typer.echo(json.dumps(plain(value), indent=2, sort_keys=True, default=str))


def emit_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    *,
    title: str = "",
    whole: Sequence[str] = (),
) -> None:
    """A table; the `whole` columns (ids people copy into the next command) are never cut."""
    if not rows:
        console.print(f"[dim]no {title or 'rows'}[/dim]")
        return
    table = Table(title=title or None)
    for column in columns:
        widest = max(len(str(row.get(column) or "")) for row in rows)
        if column in whole:
            table.add_column(column.replace("_", " "), no_wrap=True, min_width=widest)
        else:
            table.add_column(column.replace("_", " "))
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    console.print(table)


def emit_fields(values: dict[str, Any]) -> None:
    width = max((len(key) for key in values), default=0)
    for key, value in values.items():
        console.print(f"[bold]{key.ljust(width)}[/bold]  {value}")


def settings() -> Settings:
    return load_settings()


def client(url: str | None, token: str | None = None, *, need_token: bool = False) -> Client:
    if need_token and not token:
        token = stored_operator_token()
    return Client(url or DEFAULT_URL, token=token)


def stored_operator_token() -> str | None:
    data_dir = Path(os.environ.get("ANARQ_DATA_DIR", "anarq-data"))
    path = data_dir / "operator.token"
    return path.read_text().strip() if path.exists() else None
