"""`anarq id …`: your identities — created and kept on this device, registered with nodes."""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, client, emit_fields, emit_json, emit_table
from anarq.kernel.errors import BadRequest
from anarq.qlock import SigningKey
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


def acting_client(
    url: str | None, identity: str | None, operator: bool, token: str | None
) -> Client:
    """The operator's client with `--operator` (its token), else one signing as the identity."""
    if operator:
        return client(url, token, need_token=True)
    return signed_client(url, identity)


def registration_body(
    identity: wallet.StoredIdentity, key: SigningKey, secret: str
) -> dict[str, object]:
    """Name, full public key, and the commitment to the next key when the file holds one."""
    body: dict[str, object] = {
        "name": identity.name,
        "public_key": base64.b64encode(key.verify_key.to_bytes()).decode(),
    }
    with contextlib.suppress(BadRequest):  # files from before pre-rotation have no next key
        body["next_key_hash"] = wallet.key_hash(wallet.unlock_next_key(identity, secret))
    return body


@app.command("create")
def create(
    name: str = typer.Option(..., help="A name for this identity on this device."),
    classical: bool = typer.Option(False, help="Ed25519 only, without the ML-DSA-65 key."),
    register: bool = typer.Option(True, help="Register it with the node now."),
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a root identity: a did:key whose private key never leaves this device."""
    secret = passphrase(confirm=True)
    stored, key = wallet.create(name, secret, hybrid=not classical)
    values: dict[str, object] = {
        "name": stored.name,
        "did": stored.did,
        "file": str(stored.path),
        "hybrid": key.is_hybrid,
    }
    if register:
        with Client(url or DEFAULT_URL, signer=RequestSigner(did=stored.did, key=key)) as node:
            registered = node.request(
                "POST", "/squid/identities", json=registration_body(stored, key, secret)
            )
        values["registered_at"] = node.url
        values["type"] = registered["type"]
    emit_json(values) if as_json else emit_fields(values)


@app.command("register")
def register(name: str | None = NAME_ARGUMENT, url: str | None = URL_OPTION) -> None:
    """Register an identity from this device with a node."""
    identity = chosen(name)
    secret = passphrase()
    key = wallet.unlock_key(identity, secret)
    with Client(url or DEFAULT_URL, signer=RequestSigner(did=identity.did, key=key)) as node:
        node.request("POST", "/squid/identities", json=registration_body(identity, key, secret))
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


@app.command("rotate")
def rotate(name: str | None = NAME_ARGUMENT, url: str | None = URL_OPTION) -> None:
    """Move to the pre-committed next key (signed by the current one), commit a new next."""
    identity = chosen(name)
    secret = passphrase()
    current = wallet.unlock_key(identity, secret)
    upcoming = wallet.unlock_next_key(identity, secret)
    after = SigningKey.generate(hybrid=upcoming.is_hybrid)
    with Client(url or DEFAULT_URL, signer=RequestSigner(did=identity.did, key=current)) as node:
        node.request(
            "POST",
            f"/squid/identities/{identity.did}/rotate",
            json={
                "new_public_key": base64.b64encode(upcoming.verify_key.to_bytes()).decode(),
                "next_key_hash": wallet.key_hash(after),
            },
        )
    wallet.advance(identity, secret, upcoming, after)
    typer.echo(f"{identity.name} now signs with key {upcoming.key_id}")


@app.command("revoke")
def revoke(
    name: str | None = NAME_ARGUMENT,
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    url: str | None = URL_OPTION,
) -> None:
    """Revoke an identity on the node: nothing signed by it is accepted any more."""
    identity = chosen(name)
    if not yes:
        typer.confirm(f"Revoke {identity.name} ({identity.did}) for good?", abort=True)
    with signed_client(url, identity.name) as node:
        node.request("POST", f"/squid/identities/{identity.did}/revoke")
    typer.echo(f"{identity.did} is revoked")


subs = typer.Typer(
    help="Sub-identities: DAO, ENTERPRISE, CONSENTIDA (a minor's), AID (anonymous).",
    no_args_is_help=True,
)
app.add_typer(subs, name="sub")


@subs.command("create")
def sub_create(
    kind: str = typer.Option(..., "--type", help="DAO, ENTERPRISE, CONSENTIDA or AID."),
    name: str = typer.Option(..., help="Name of the new identity on this device."),
    root: str | None = typer.Option(None, help="Root identity [default: the active one]."),
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a sub-identity with its own key, signed for by the root.

    An AID's link to the root is not sent: only a commitment is; the salt that opens
    it stays in the AID's identity file, for the root to reveal when it chooses.
    """
    import hashlib
    import secrets

    from anarq.qlock import encode_signature, sign
    from anarq.squid.service import sub_statement

    kind = kind.upper()
    parent = chosen(root)
    secret = passphrase()
    parent_key = wallet.unlock_key(parent, secret)
    stored, key = wallet.create(name, secret, hybrid=False)
    classical = SigningKey.from_seeds(key.ed25519_seed())
    body: dict[str, object] = {
        "did": stored.did,
        "type": kind,
        "name": name,
        "proof": encode_signature(sign(classical, sub_statement(parent.did, stored.did))),
    }
    if kind == "AID":
        salt = secrets.token_hex(16)
        body["link_commitment"] = hashlib.sha256(f"{parent.did}\n{salt}".encode()).hexdigest()
        wallet.annotate(stored, aid_link={"root": parent.did, "salt": salt})
    try:
        with Client(
            url or DEFAULT_URL, signer=RequestSigner(did=parent.did, key=parent_key)
        ) as node:
            created = node.request("POST", f"/squid/identities/{parent.did}/subs", json=body)
    except BaseException:
        stored.path.unlink(missing_ok=True)  # the node refused it: keep no orphan identity
        raise
    emit_json(created) if as_json else emit_fields(
        {k: created[k] for k in ("did", "type", "name", "governance", "privacy")}
    )


@subs.command("ls")
def sub_ls(
    root: str | None = typer.Option(None, help="Root identity [default: active]."),
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The root's linked sub-identities (AIDs are never listed)."""
    parent = chosen(root)
    with signed_client(url, parent.name) as node:
        rows = node.request("GET", f"/squid/identities/{parent.did}/subs")
    emit_json(rows) if as_json else emit_table(
        rows, ["did", "type", "name", "status"], title="sub-identities"
    )
