"""`anarq vc …`: credentials. Ask the node to attest a fact about you, issue credentials
yourself (signed here, with your key), keep them, present them to a verifier, verify any
credential or presentation (offline too), and revoke."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_fields, emit_json, emit_table
from anarq.kernel.clock import rfc3339
from anarq.qonsent.cli import parse_duration
from anarq.qwallet.cli import IDENTITY_OPTION
from anarq.sdk import Client
from anarq.squid import wallet
from anarq.squid.cli import chosen, passphrase, signed_client
from anarq.vc import credentials as vcs
from anarq.vc import statuslist

app = typer.Typer(no_args_is_help=True)


def _now() -> datetime:
    return datetime.now(UTC)


def _seed(identity: str | None) -> tuple[str, bytes]:
    stored = chosen(identity)
    key = wallet.unlock_key(stored, passphrase())
    return stored.did, key.ed25519_seed()


def _read(path: Path) -> dict[str, Any]:
    text = sys.stdin.read() if str(path) == "-" else path.read_text()
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{path} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise typer.BadParameter(f"{path} does not hold a JSON object")
    return document


def _claims(items: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"a claim is NAME=VALUE, not {item!r}")
        found[name] = value
    return found


@app.command("issue")
def issue(
    kind: str | None = typer.Option(
        None, "--kind", help="Ask the node to attest: did-control, dao-member, purchase."
    ),
    dao: str | None = typer.Option(None, "--dao", help="With --kind dao-member: the DAO's DID."),
    order: str | None = typer.Option(None, "--order", help="With --kind purchase: the order id."),
    to: str | None = typer.Option(None, "--to", help="Issue it yourself, about this DID."),
    type_: str = typer.Option("Credential", "--type", help="Its type, e.g. PlumberLicence."),
    claim: list[str] = typer.Option([], "--claim", help="NAME=VALUE about the subject (repeat)."),
    name: str | None = typer.Option(None, "--name", help="A human name for the credential."),
    expires: str | None = typer.Option(None, "--expires", help="e.g. 52w [never]."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Get a credential from the node about you (--kind), or issue one yourself (--to)."""
    if (kind is None) == (to is None):
        raise typer.BadParameter("give --kind (the node attests) or --to (you issue)")
    with signed_client(url, identity) as node:
        if kind is not None:
            body: dict[str, Any] = {"kind": kind}
            if dao:
                body["dao"] = dao
            if order:
                body["order"] = order
            held: dict[str, Any] = node.request("POST", "/vc/issue", json=body)
        else:
            assert to is not None
            held = _issue_yourself(node, identity, to, type_, _claims(claim), name, expires)
    if as_json:
        emit_json(held["credential"])
        return
    emit_fields({k: held[k] for k in ("id", "kind", "issuer", "holder", "valid_until")})


def _issue_yourself(
    node: Client,
    identity: str | None,
    subject: str,
    type_: str,
    claims: dict[str, Any],
    name: str | None,
    expires: str | None,
) -> dict[str, Any]:
    issuer, seed = _seed(identity)
    allocation: dict[str, Any] = node.request("POST", "/vc/status")
    if allocation["list_to_sign"] is not None:
        # A new status list: it is published, signed by you, before anything points at it.
        signed_list = vcs.issue(allocation["list_to_sign"], seed, created=_now())
        list_id = allocation["list_url"].rsplit("/", 1)[-1]
        node.request("PUT", f"/vc/status/{list_id}", json={"credential": signed_list})
    now = _now()
    document = vcs.build(
        issuer,
        {"id": subject, **claims},
        [type_],
        valid_from=now,
        valid_until=now + parse_duration(expires) if expires else None,
        status=allocation["credential_status"],
        name=name,
    )
    signed = vcs.issue(document, seed, created=now)
    held: dict[str, Any] = node.request("POST", "/vc/credentials", json={"credential": signed})
    return held


@app.command("ls")
def ls(
    issued: bool = typer.Option(False, "--issued", help="The ones you issued, not hold."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your credentials."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request(
            "GET", "/vc/credentials", params={"role": "issuer" if issued else "holder"}
        )
    if as_json:
        emit_json(found)
        return
    rows = [{**h, "state": "revoked" if h["revoked_at"] else "active"} for h in found]
    emit_table(rows, ["id", "kind", "issuer", "state"], title="credentials")


@app.command("show")
def show(
    credential_id: str = typer.Argument(...),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write it to this file."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """One credential, as the signed JSON document."""
    with signed_client(url, identity) as node:
        held: dict[str, Any] = node.request("GET", f"/vc/credentials/{credential_id}")
    text = json.dumps(held["credential"], indent=2)
    if output is not None:
        output.write_text(text + "\n")
        console.print(f"written to {output}")
    else:
        typer.echo(text)


@app.command("present")
def present(
    credential_id: list[str] = typer.Argument(..., help="The credentials to present."),
    challenge: str = typer.Option(..., "--challenge", help="The verifier's challenge."),
    domain: str | None = typer.Option(None, "--domain", help="The verifier's domain."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write it to this file."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """A presentation of your credentials, signed by you for one verifier's challenge."""
    holder, seed = _seed(identity)
    with signed_client(url, identity) as node:
        held = [
            node.request("GET", f"/vc/credentials/{cid}")["credential"] for cid in credential_id
        ]
    presentation = vcs.present(
        held, holder, seed, challenge=challenge, domain=domain, created=_now()
    )
    text = json.dumps(presentation, indent=2)
    if output is not None:
        output.write_text(text + "\n")
        console.print(f"written to {output}")
    else:
        typer.echo(text)


@app.command("email")
def email(
    address: str | None = typer.Argument(None, help="The address to prove."),
    confirm: str | None = typer.Option(
        None, "--confirm", help="The token from the email (instead of opening its link)."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Get a verified-email credential: the node mails the address a one-use link;
    open it (or pass its token to --confirm) within an hour."""
    if (address is None) == (confirm is None):
        raise typer.BadParameter("give an ADDRESS to mail, or --confirm TOKEN")
    with signed_client(url, identity) as node:
        if address is not None:
            sent: dict[str, Any] = node.request("POST", "/vc/email", json={"email": address})
            if as_json:
                emit_json(sent)
            else:
                console.print(f"a link is on its way to {sent['email']}; it works for an hour")
            return
        held: dict[str, Any] = node.request("POST", "/vc/email/confirm", json={"token": confirm})
    if as_json:
        emit_json(held["credential"])
        return
    emit_fields({k: held[k] for k in ("id", "kind", "issuer", "holder", "valid_until")})


@app.command("challenge")
def challenge(
    domain: str | None = typer.Option(None, "--domain", help="Where the presentation is for."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """As a verifier: a one-use challenge to give whoever presents credentials to you."""
    body = {"domain": domain} if domain else {}
    with signed_client(url, identity) as node:
        given: dict[str, Any] = node.request("POST", "/vc/challenges", json=body)
    if as_json:
        emit_json(given)
        return
    emit_fields(given)


@app.command("verify")
def verify(
    path: Path = typer.Argument(..., help="A credential or presentation (JSON; - for stdin)."),
    challenge: str | None = typer.Option(None, "--challenge", help="For a presentation."),
    domain: str | None = typer.Option(None, "--domain", help="For a presentation."),
    status_list: list[Path] = typer.Option(
        [], "--status-list", help="A status list credential file to check revocation against."
    ),
    offline: bool = typer.Option(
        False, "--offline", help="Fetch nothing: revocation only from --status-list files."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Verify a credential or presentation here, with no node: the proofs from the DIDs
    alone; revocation from the issuer's status list (fetched, or given as files)."""
    document = _read(path)
    lists = {str(d.get("id")): d for d in map(_read, status_list)}

    def lookup(list_url: str) -> dict[str, Any] | None:
        if list_url in lists:
            return lists[list_url]
        if offline:
            return None
        try:
            response = httpx.get(list_url, timeout=10)
            if response.status_code != 200:
                return None
            found: dict[str, Any] = response.json()
            return found
        except (httpx.HTTPError, ValueError):
            return None

    if "VerifiablePresentation" in (document.get("type") or []):
        if challenge is None:
            raise typer.BadParameter("a presentation is verified against --challenge")
        report = vcs.verify_presentation(
            document, challenge=challenge, domain=domain, now=_now(), status_lookup=lookup
        )
    else:
        report = vcs.verify_credential(document, now=_now(), status_lookup=lookup)
    result = report.as_dict()
    if as_json:
        emit_json(result)
    else:
        state = "[green]verified[/green]" if report.verified else "[red]NOT verified[/red]"
        console.print(f"{state}  issuer {report.issuer or '-'}  status {report.status}")
        for check in report.checks:
            mark = {True: "ok", False: "FAIL", None: "skipped"}[check["ok"]]
            console.print(f"  {mark:7} {check['check']}  {check['detail']}")
        for inner in report.credentials:
            console.print(
                f"  credential {inner.types[-1] if inner.types else '?'} from {inner.issuer}: "
                f"{'verified' if inner.verified else 'NOT verified'} (status {inner.status})"
            )
    raise typer.Exit(0 if report.verified else 1)


@app.command("revoke")
def revoke(
    credential_id: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Revoke a credential: one you issued (your status list, signed again here with its
    bit set), or one the node issued to you."""
    with signed_client(url, identity) as node:
        held: dict[str, Any] = node.request("GET", f"/vc/credentials/{credential_id}")
        me = chosen(identity).did
        if held["issuer"] != me:
            node.request("POST", f"/vc/credentials/{credential_id}/revoke")
            console.print(f"revoked {credential_id}")
            return
        status = held["credential"].get("credentialStatus")
        if not status:
            raise typer.BadParameter("this credential has no status entry: it cannot be revoked")
        list_url = status["statusListCredential"]
        list_id = list_url.rsplit("/", 1)[-1]
        current: dict[str, Any] = node.request("GET", f"/vc/status/{list_id}")
        bits = bytearray(statuslist.decode(current["credentialSubject"]["encodedList"]))
        statuslist.set_bit(bits, int(status["statusListIndex"]))
        unsigned = statuslist.credential(
            list_url, me, bytes(bits), status["statusPurpose"], valid_from=rfc3339(_now())
        )
        _, seed = _seed(identity)
        signed = vcs.issue(unsigned, seed, created=_now())
        node.request("PUT", f"/vc/status/{list_id}", json={"credential": signed})
    console.print(f"revoked {credential_id} (status list {list_id} published again)")
