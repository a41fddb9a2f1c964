"""`anarq config`: what the node would run with."""

from __future__ import annotations

import typer

from anarq.cli.output import JSON_OPTION, emit_fields, emit_json, settings

app = typer.Typer(
    help="Inspect settings (env ANARQ_*, the ANARQ_CONFIG TOML file, defaults).",
    no_args_is_help=True,
)


@app.command("show")
def show(as_json: bool = JSON_OPTION) -> None:
    """Print the effective settings, with passwords and tokens hidden."""
    values = settings().redacted()
    if as_json:
        emit_json(values)
        return
    effective = values.pop("effective")
    emit_fields({**values, **{f"effective.{k}": v for k, v in effective.items()}})
