"""`anarq`: run a node and use it from the terminal."""

from __future__ import annotations

import sys
from typing import Any

import httpx
import typer

from anarq import __version__
from anarq.cli import config, db, up
from anarq.cli.output import JSON_OPTION, URL_OPTION, client, emit_fields, emit_json, errors
from anarq.kernel.errors import AnarqError, SettingsError
from anarq.sdk import ApiError

app = typer.Typer(
    name="anarq",
    help="AnarQ&Q: your own node for identity, files, mail, chat, payments and governance.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("up")(up.up)
app.add_typer(config.app, name="config")
app.add_typer(db.app, name="db")


@app.command()
def version(as_json: bool = JSON_OPTION) -> None:
    """Print the version of this program."""
    if as_json:
        emit_json({"version": __version__})
    else:
        typer.echo(f"anarq {__version__}")


@app.command()
def status(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Ask a running node whether it is ready, and what it is."""
    with client(url) as node:
        info = node.node_info()
        try:
            readiness: dict[str, Any] = node.ready()
        except ApiError as exc:
            readiness = {"status": "not ready", "checks": exc.problem.get("checks", {})}
    if as_json:
        emit_json({"url": node.url, "ready": readiness, "node": info})
        return
    checks = ", ".join(f"{name} {state}" for name, state in readiness.get("checks", {}).items())
    emit_fields(
        {
            "node": info["name"],
            "url": node.url,
            "status": f"{readiness['status']} ({checks})",
            "version": info["version"],
            "backend": info["backend"],
            "modules": ", ".join(info["modules"]),
        }
    )
    if readiness["status"] != "ready":
        raise typer.Exit(1)


def _mount_modules() -> None:
    from anarq.modules import installed_modules

    for module in installed_modules():
        if module.cli is not None:
            app.add_typer(module.cli, name=module.command or module.name, help=module.summary)
        for word, extra in module.more_cli:
            app.add_typer(extra, name=word)


_mount_modules()


def main() -> None:
    """Entry point: run the app, turning expected failures into one line on stderr."""
    try:
        app()
    except SettingsError as exc:
        errors.print(f"[red]error:[/red] {exc.detail}", highlight=False)
        sys.exit(2)
    except AnarqError as exc:
        errors.print(f"[red]error:[/red] {exc.detail}", highlight=False)
        sys.exit(1)
    except ApiError as exc:
        errors.print(f"[red]error:[/red] {exc} [dim]({exc.code})[/dim]", highlight=False)
        sys.exit(1)
    except httpx.TransportError as exc:
        errors.print(
            f"[red]error:[/red] cannot reach the node ({exc}); is `anarq up` running? "
            "Use --url or ANARQ_URL to point elsewhere.",
            highlight=False,
        )
        sys.exit(1)
