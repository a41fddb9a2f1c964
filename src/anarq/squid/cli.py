"""`anarq id …`: your identities — created and kept on this device, registered with nodes."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, client, emit_fields, emit_json, emit_table
from anarq.sdk import Client
from anarq.sdk.client import DEFAULT_URL
from anarq.sdk.signing import RequestSigner
from anarq.squid import wallet

app = typer.Typer(no_args_is_help=True)
NAME_ARGUMENT = typer.Argument(None, help="Identity name [default: the active one].")


def passphrase(*, confirm: bool = False) -> str:
    """From ANARQ_PASSPHRASE, else asked for without echo."""
    given = os.environ.get("ANARQ_PASSPHRASE")
    if given:
        return given
    value: str = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    return value


def chosen(name: str | None) -> wallet.StoredIdentity:
    name = name or wallet.active_name()
    if name is None:
        raise typer.BadParameter("no identity yet: create one with `anarq id create --name NAME`")
    return wallet.load(name)


def signed_client(url: str | None, name: str | None = None) -> Client:
    """A client that signs every request as the chosen identity."""
    identity = chosen(name)
    key = wallet.unlock_key(identity, passphrase())
    return Client(url or DEFAULT_URL, signer=RequestSigner(did=identity.did, key=key))


@app.command("create")
def create(
    name: str = typer.Option(..., help="A name for this identity on this device."),
    classical: bool = typer.Option(False, help="Ed25519 only, without the ML-DSA-65 key."),
    register: bool = typer.Option(True, help="Register it with the node now."),
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a root identity: a did:key whose private key never leaves this device."""
    stored, key = wallet.create(name, passphrase(confirm=True), hybrid=not classical)
    values: dict[str, object] = {
        "name": stored.name,
        "did": stored.did,
        "file": str(stored.path),
        "hybrid": key.is_hybrid,
    }
    if register:
        import base64

        with Client(url or DEFAULT_URL, signer=RequestSigner(did=stored.did, key=key)) as node:
            registered = node.request(
                "POST",
                "/squid/identities",
                json={
                    "name": name,
                    "public_key": base64.b64encode(key.verify_key.to_bytes()).decode(),
                },
            )
        values["registered_at"] = node.url
        values["type"] = registered["type"]
    emit_json(values) if as_json else emit_fields(values)


@app.command("register")
def register(name: str | None = NAME_ARGUMENT, url: str | None = URL_OPTION) -> None:
    """Register an identity from this device with a node."""
    import base64

    identity = chosen(name)
    key = wallet.unlock_key(identity, passphrase())
    with Client(url or DEFAULT_URL, signer=RequestSigner(did=identity.did, key=key)) as node:
        node.request(
            "POST",
            "/squid/identities",
            json={
                "name": identity.name,
                "public_key": base64.b64encode(key.verify_key.to_bytes()).decode(),
            },
        )
    typer.echo(f"{identity.did} registered at {node.url}")


@app.command("list")
def list_(as_json: bool = JSON_OPTION) -> None:
    """Identities kept on this device; the active one is marked."""
    active = wallet.active_name()
    rows = [
        {"name": i.name, "did": i.did, "active": i.name == active} for i in wallet.all_identities()
    ]
    emit_json(rows) if as_json else emit_table(rows, ["name", "did", "active"], title="identities")


@app.command("use")
def use(name: str = typer.Argument(..., help="Identity to act as from now on.")) -> None:
    """Make NAME the active identity for every command."""
    wallet.use(name)
    typer.echo(f"now acting as {name}")


@app.command("show")
def show(
    name: str | None = NAME_ARGUMENT, url: str | None = URL_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Resolve an identity's DID document on the node."""
    identity = chosen(name)
    with client(url) as node:
        resolution = node.request("GET", f"/squid/identities/{identity.did}")
    if as_json:
        emit_json(resolution)
        return
    record = resolution.get("identity") or {}
    emit_fields(
        {
            "name": identity.name,
            "did": identity.did,
            "registered": resolution["registered"],
            "type": record.get("type", "-"),
            "status": record.get("status", "-"),
            "hybrid": record.get("hybrid", "-"),
        }
    )


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Identity to export."),
    output: Path = typer.Option(..., "-o", "--output", help="File to write."),
) -> None:
    """Write a portable identity file (still sealed by its passphrase)."""
    wallet.export_to(name, output)
    typer.echo(f"{name} exported to {output}; it opens only with its passphrase")


@app.command("import")
def import_(
    source: Path = typer.Argument(..., exists=True, dir_okay=False),
    name: str | None = typer.Option(None, help="Store it under another name."),
) -> None:
    """Bring an exported identity onto this device (checks the passphrase)."""
    stored = wallet.import_from(source, passphrase(), name=name)
    typer.echo(f"imported {stored.name} ({stored.did})")
