"""`anarq flow …`: write workflows (JSON or YAML files), run them, follow their runs, and
move through their versions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_fields, emit_json, emit_table
from anarq.qwallet.cli import IDENTITY_OPTION
from anarq.sdk import Client
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)

WORKFLOW_ARGUMENT = typer.Argument(..., help="The workflow's id or name.")
FILE_ARGUMENT = typer.Argument(..., exists=True, dir_okay=False, help="A .json or .yaml file.")


def _id(node: Client, ref: str) -> str:
    """A workflow id from an id or one of your workflow names."""
    if len(ref) == 26 and ref.isalnum() and ref.isupper():
        return ref
    for flow in node.request("GET", "/qflow/workflows"):
        if flow["name"] == ref:
            return str(flow["id"])
    raise typer.BadParameter(f"you have no workflow named {ref!r}")


@app.command("create")
def create(
    path: Path = FILE_ARGUMENT,
    disabled: bool = typer.Option(False, "--disabled", help="Create it switched off."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a workflow from a definition file (see `anarq flow actions`)."""
    body = {"definition": path.read_text(), "enabled": not disabled}
    with signed_client(url, identity) as node:
        made = node.request("POST", "/qflow/workflows", json=body)
    if as_json:
        emit_json(made)
        return
    console.print(f"created {made['name']} (version 1, {made['trigger']} trigger)")
    if made.get("hook_secret"):
        console.print(f"webhook: POST {made['hook_url']}")
        console.print(f"secret (shown once): {made['hook_secret']}")
    console.print(f"[dim]workflow {made['id']}[/dim]")


@app.command("update")
def update(
    workflow: str = WORKFLOW_ARGUMENT,
    path: Path = FILE_ARGUMENT,
    note: str = typer.Option("", "--note", help="What this version changes."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Write a new version of a workflow; runs already started keep theirs."""
    with signed_client(url, identity) as node:
        workflow_id = _id(node, workflow)
        current = node.request("GET", f"/qflow/workflows/{workflow_id}")
        made = node.request(
            "PUT",
            f"/qflow/workflows/{workflow_id}",
            json={"definition": path.read_text(), "note": note, "enabled": current["enabled"]},
        )
    console.print(f"{made['name']} is at version {made['version']}")


@app.command("ls")
def ls(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your workflows."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request("GET", "/qflow/workflows")
    if as_json:
        emit_json(found)
        return
    rows = [{**f, "on": "yes" if f["enabled"] else "no", "when": f["event"] or ""} for f in found]
    emit_table(
        rows, ["id", "name", "version", "on", "trigger", "when"], title="workflows", whole=["id"]
    )


@app.command("show")
def show(
    workflow: str = WORKFLOW_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A workflow and its current definition."""
    with signed_client(url, identity) as node:
        made = node.request("GET", f"/qflow/workflows/{_id(node, workflow)}")
    if as_json:
        emit_json(made)
        return
    emit_fields(
        {
            "workflow": made["id"],
            "name": made["name"],
            "version": made["version"],
            "enabled": "yes" if made["enabled"] else "no",
            "trigger": made["trigger"] + (f" {made['event']}" if made["event"] else ""),
            "webhook": made["hook_url"] or "",
            "next run": made["next_run_at"] or "",
        }
    )
    sys.stdout.write(json.dumps(made["definition"], indent=2) + "\n")


def _switch(workflow: str, on: bool, url: str | None, identity: str | None) -> None:
    with signed_client(url, identity) as node:
        made = node.request(
            "POST", f"/qflow/workflows/{_id(node, workflow)}/{'enable' if on else 'disable'}"
        )
    console.print(f"{made['name']} is {'enabled' if made['enabled'] else 'disabled'}")


@app.command("enable")
def enable(
    workflow: str = WORKFLOW_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Switch a workflow on: its trigger starts runs."""
    _switch(workflow, True, url, identity)


@app.command("disable")
def disable(
    workflow: str = WORKFLOW_ARGUMENT,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Switch a workflow off (runs under way finish)."""
    _switch(workflow, False, url, identity)


@app.command("run")
def run(
    workflow: str = WORKFLOW_ARGUMENT,
    input_: str = typer.Option("{}", "--input", help="JSON: the run's trigger.data."),
    run_id: str | None = typer.Option(None, "--id", help="Your id; resending it runs once."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Start a run now."""
    try:
        data = json.loads(input_)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--input is not JSON: {exc}") from None
    body: dict[str, Any] = {"input": data}
    if run_id:
        body["id"] = run_id
    with signed_client(url, identity) as node:
        made = node.request("POST", f"/qflow/workflows/{_id(node, workflow)}/runs", json=body)
    emit_json(made) if as_json else console.print(f"run {made['id']} is {made['status']}")


@app.command("runs")
def runs(
    workflow: str = WORKFLOW_ARGUMENT,
    status: str | None = typer.Option(None, "--status"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A workflow's runs, newest first; `anarq flow run-show RUN` for one step by step."""
    with signed_client(url, identity) as node:
        page = node.request(
            "GET",
            f"/qflow/workflows/{_id(node, workflow)}/runs",
            params={"status": status} if status else {},
        )
    if as_json:
        emit_json(page)
        return
    rows = [{**r, "steps": r["step"], "error": r["error"] or ""} for r in page["runs"]]
    emit_table(rows, ["id", "status", "steps", "created_at", "error"], title="runs", whole=["id"])


@app.command("run-show")
def run_show(
    run_id: str = typer.Argument(..., help="The run's id."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One run: each step's attempts, inputs and outputs (secrets redacted)."""
    with signed_client(url, identity) as node:
        made = node.request("GET", f"/qflow/runs/{run_id}")
    if as_json:
        emit_json(made)
        return
    console.print(
        f"run {made['id']}: {made['status']}" + (f" ({made['error']})" if made["error"] else "")
    )
    rows = [
        {
            "step": s["step"],
            "attempt": s["attempt"],
            "status": s["status"],
            "output": json.dumps(s["output"]) if s["output"] is not None else s["error"] or "",
        }
        for s in made["steps"]
    ]
    emit_table(rows, ["step", "attempt", "status", "output"], title="steps")


@app.command("history")
def history(
    workflow: str = WORKFLOW_ARGUMENT,
    diff_from: int | None = typer.Option(
        None, "--diff", help="Show what changed since this version."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A workflow's versions (with `--diff N`, what changed from version N to now)."""
    with signed_client(url, identity) as node:
        workflow_id = _id(node, workflow)
        if diff_from is not None:
            made = node.request(
                "GET", f"/qflow/workflows/{workflow_id}/diff", params={"from": diff_from}
            )
            emit_json(made) if as_json else sys.stdout.write(made["diff"] + "\n")
            return
        found = node.request("GET", f"/qflow/workflows/{workflow_id}/versions")
    emit_json(found) if as_json else emit_table(
        found, ["version", "note", "created_at"], title="versions"
    )


@app.command("rollback")
def rollback(
    workflow: str = WORKFLOW_ARGUMENT,
    version: int = typer.Argument(..., help="The version to go back to."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Write a new version with an earlier version's definition."""
    with signed_client(url, identity) as node:
        made = node.request(
            "POST", f"/qflow/workflows/{_id(node, workflow)}/rollback", json={"version": version}
        )
    console.print(f"{made['name']} is at version {made['version']} (as version {version} was)")


@app.command("actions")
def actions(
    url: str | None = URL_OPTION,
    identity: str | None = IDENTITY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """What steps can do, and what each takes in `with`."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request("GET", "/qflow/actions")
    if as_json:
        emit_json(found)
        return
    rows = [{**a, "takes": ", ".join(a["input"].get("properties", {}))} for a in found]
    emit_table(rows, ["name", "summary", "takes"], title="actions")
