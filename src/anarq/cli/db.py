"""`anarq db`: schema migrations."""

from __future__ import annotations

import typer

from anarq.cli.output import JSON_OPTION, emit_fields, emit_json, settings
from anarq.kernel.db import Database

app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)


def _database() -> Database:
    s = settings()
    s.data_dir.mkdir(parents=True, exist_ok=True)
    return Database(s.effective_database_url, pool_size=1)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    database = _database()
    try:
        database.ping()
        before = database.current_revision()
        database.upgrade(revision)
        after = database.current_revision()
    finally:
        database.close()
    typer.echo(f"database at {after}" + (" (unchanged)" if before == after else f" (was {before})"))


@app.command("current")
def current(as_json: bool = JSON_OPTION) -> None:
    """Show the schema revision of the database and the one this code needs."""
    database = _database()
    try:
        current, head = database.current_revision(), database.head_revision()
    finally:
        database.close()
    values = {"current": current, "head": head, "up_to_date": current == head}
    if as_json:
        emit_json(values)
    else:
        emit_fields(values)
