"""`anarq mail …`: certified mail from your identity — sealed and signed here, on your device.

The node holds only sealed envelopes: this command signs each message with your key,
seals it to every recipient and to you, and opens what you read with your own key,
checking the sender's signature. Search runs here too, over mail it decrypts.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_fields, emit_json, emit_table
from anarq.kernel.clock import rfc3339
from anarq.qlock import RecipientKey, VerifyKey
from anarq.qmail.envelope import (
    MessageInvalid,
    compose,
    open_message,
    receipt,
    receipt_digest,
    seal_message,
    sign_receipt,
    verify_receipt,
    verify_sender,
)
from anarq.qonsent.cli import parse_duration
from anarq.qwallet.cli import asset_scale, from_units, to_units
from anarq.sdk import ApiError, Client
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)
contacts_app = typer.Typer(no_args_is_help=True, help="Whose mail goes straight to your inbox.")
app.add_typer(contacts_app, name="contacts")
postage_app = typer.Typer(
    no_args_is_help=True, help="What strangers' mail pays you to reach your inbox."
)
app.add_typer(postage_app, name="postage")
threshold_app = typer.Typer(
    no_args_is_help=True, help="The reputation strangers need for their mail to reach your inbox."
)
app.add_typer(threshold_app, name="threshold")

IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
LIST_COLUMNS = ["id", "sender", "folder", "labels", "sent_at", "read"]
SEARCH_MAX_MESSAGES = 1000


# Client-side mail: keys, sealing, opening -------------------------------------------------


def _mail_key(node: Client, did: str) -> dict[str, Any]:
    result: dict[str, Any] = node.request("GET", f"/qmail/keys/{did}")
    return result


def _readers(node: Client, dids: list[str]) -> list[RecipientKey]:
    return [
        RecipientKey.from_bytes(base64.b64decode(_mail_key(node, did)["recipient_key"]))
        for did in dict.fromkeys(dids)
    ]


def send_message(
    node: Client,
    *,
    to: list[str],
    cc: list[str] | None = None,
    subject: str,
    body: str,
    attachments: list[dict[str, Any]] | None = None,
    in_reply_to: str | None = None,
    expires_at: datetime | None = None,
    postage: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Sign, seal to every recipient and the sender, and send; the node's record of it."""
    signer = node.signer
    assert signer is not None, "mail is sent by a signing client"
    try:
        message = compose(
            sender=signer.did,
            to=to,
            cc=cc,
            subject=subject,
            body=body,
            sent_at=rfc3339(datetime.now(UTC)),
            attachments=attachments,
            in_reply_to=in_reply_to,
            expires_at=rfc3339(expires_at) if expires_at else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    sealed = seal_message(signer.key, message, _readers(node, [signer.did, *to, *(cc or [])]))
    request: dict[str, Any] = {
        "to": to,
        "cc": cc or [],
        "envelope": base64.urlsafe_b64encode(sealed).decode().rstrip("="),
        "in_reply_to": in_reply_to,
    }
    if expires_at is not None:
        request["expires_at"] = expires_at.isoformat()
    if postage is not None:
        request["postage"] = postage
    result: dict[str, Any] = node.request("POST", "/qmail/messages", json=request)
    return result


def open_mail(node: Client, message_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the node's record, the opened message), the sender's signature checked."""
    signer = node.signer
    assert signer is not None, "mail is read by a signing client"
    info: dict[str, Any] = node.request("GET", f"/qmail/messages/{message_id}")
    sealed = node.request("GET", f"/qmail/messages/{message_id}/sealed")
    try:
        opened = open_message(sealed, signer.key.derive_agreement_key())
        key = VerifyKey.from_bytes(base64.b64decode(_mail_key(node, info["sender"])["verify_key"]))
        verify_sender(opened, info["sender"], key)
    except MessageInvalid as exc:
        console.print(f"[red]error:[/red] message {message_id} does not verify: {exc}")
        raise typer.Exit(1) from None
    return info, opened.message


def _give_read_receipt(node: Client, info: dict[str, Any]) -> dict[str, Any]:
    signer = node.signer
    assert signer is not None
    document = sign_receipt(
        signer.key,
        receipt(
            kind="read",
            message_id=info["id"],
            digest=info["digest"],
            recipient=signer.did,
            time=rfc3339(datetime.now(UTC)),
            issuer=signer.did,
        ),
    )
    result: dict[str, Any] = node.request(
        "POST", f"/qmail/messages/{info['id']}/read", json={"receipt": document}
    )
    return result


def _rows(page: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            **m,
            "labels": ",".join(m["labels"]),
            "read": "yes" if m["read_at"] else "",
        }
        for m in page
    ]


def _attach(node: Client, files: list[Path], recipients: list[str]) -> list[dict[str, Any]]:
    """Upload each file to your drive (encrypted) and share it with every recipient."""
    from anarq.qdrive.cli import upload_file

    refs = []
    folder = f"/mail-attachments/{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
    for path in files:
        if not path.is_file():
            raise typer.BadParameter(f"{path} is not a file")
        stored = upload_file(node, path, f"{folder}/{path.name}", overwrite=False)
        for did in dict.fromkeys(recipients):
            node.request("POST", f"/qdrive/files/{stored['id']}/shares", json={"grantee": did})
        refs.append(
            {
                "file_id": stored["id"],
                "name": path.name,
                "size": stored["size"],
                "media_type": stored["media_type"],
            }
        )
    return refs


def _dids(text: str | None) -> list[str]:
    return [d.strip() for d in (text or "").split(",") if d.strip()]


def _body(body: str | None, body_file: Path | None) -> str:
    if (body is None) == (body_file is None):
        raise typer.BadParameter("give exactly one of --body and --body-file")
    if body_file is not None:
        return body_file.read_text()
    return body or ""


# Commands ------------------------------------------------------------------------------------


@app.command("send")
def send(
    to: str = typer.Option(..., "--to", help="Recipients' DIDs, comma-separated."),
    subject: str = typer.Option(..., "--subject"),
    body: str | None = typer.Option(None, "--body", help="The text."),
    body_file: Path | None = typer.Option(None, "--body-file", help="Read the text from a file."),
    cc: str | None = typer.Option(None, "--cc", help="More recipients, comma-separated."),
    attach: list[Path] = typer.Option([], "--attach", help="A file to attach (repeatable)."),
    expires: str | None = typer.Option(None, "--expires", help="Delete for good after, e.g. 7d."),
    postage_max: str | None = typer.Option(
        None,
        "--postage-max",
        help="Pay each stranger who asks postage up to this (e.g. 0.1), to reach their inbox.",
    ),
    postage_asset: str = typer.Option("PI", "--postage-asset", help="The postage's asset."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Send a message: signed by you, sealed to each recipient and yourself.

    Mail from someone not in a recipient's contacts waits in their requests folder, unless
    the recipient asks postage and `--postage-max` covers it: then it is paid to them and
    the message lands in their inbox (`anarq mail postage show DID` tells the price)."""
    recipients, copies = _dids(to), _dids(cc)
    if not recipients:
        raise typer.BadParameter("--to names at least one DID")
    text = _body(body, body_file)
    expires_at = datetime.now(UTC) + parse_duration(expires) if expires else None
    with signed_client(url, identity) as node:
        postage = None
        if postage_max is not None:
            units = to_units(postage_max, asset_scale(node, postage_asset))
            postage = {"asset": postage_asset, "max_amount": str(units)}
        refs = _attach(node, attach, recipients + copies) if attach else []
        sent = send_message(
            node,
            to=recipients,
            cc=copies,
            subject=subject,
            body=text,
            attachments=refs,
            expires_at=expires_at,
            postage=postage,
        )
    if as_json:
        emit_json(sent)
    else:
        console.print(f"sent {sent['id']} to {len(sent['recipients'])} recipient(s)")


def _list(node: Client, **params: Any) -> dict[str, Any]:
    query = {k: v for k, v in params.items() if v is not None}
    result: dict[str, Any] = node.request("GET", "/qmail/messages", params=query)
    return result


@app.command("inbox")
def inbox(
    limit: int = typer.Option(50, min=1, max=200),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your inbox, newest first (mail from strangers waits in `ls --folder requests`)."""
    with signed_client(url, identity) as node:
        page = _list(node, folder="inbox", limit=limit)
    if as_json:
        emit_json(page)
    else:
        emit_table(_rows(page["messages"]), LIST_COLUMNS, title="inbox")


@app.command("ls")
def ls(
    folder: str | None = typer.Option(None, "--folder", help="inbox sent archive trash requests"),
    label: str | None = typer.Option(None, "--label"),
    thread: str | None = typer.Option(None, "--thread", help="A thread id."),
    limit: int = typer.Option(50, min=1, max=200),
    before: str | None = typer.Option(None, "--before", help="Continue after this id."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List messages by folder, label or thread."""
    with signed_client(url, identity) as node:
        page = _list(node, folder=folder, label=label, thread=thread, limit=limit, before=before)
    if as_json:
        emit_json(page)
    else:
        emit_table(_rows(page["messages"]), LIST_COLUMNS, title=folder or label or "mail")
        if page["next"]:
            console.print(f"[dim]more: --before {page['next']}[/dim]")


@app.command("read")
def read(
    message_id: str = typer.Argument(...),
    receipt_: bool = typer.Option(
        False, "--receipt/--no-receipt", help="Send the sender a signed read receipt."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Open a message with your key and check the sender's signature."""
    with signed_client(url, identity) as node:
        info, message = open_mail(node, message_id)
        if info["role"] == "recipient" and receipt_ and info["read_at"] is None:
            info = _give_read_receipt(node, info)
        elif info["read_at"] is None:
            info = node.request("POST", f"/qmail/messages/{message_id}/read", json={})
    if as_json:
        emit_json({"info": info, "message": message, "signature": "valid"})
        return
    emit_fields(
        {
            "from": message["from"],
            "to": ", ".join(message["to"]),
            **({"cc": ", ".join(message["cc"])} if message.get("cc") else {}),
            "subject": message["subject"],
            "sent": message["sent_at"],
            "signature": "valid",
        }
    )
    console.print()
    console.print(message["body"], markup=False, highlight=False)
    for ref in message.get("attachments") or []:
        console.print(
            f"[dim]attachment {ref['name']} ({ref['size']} bytes): "
            f"anarq drive get {ref['file_id']} -o {ref['name']}[/dim]"
        )


@app.command("reply")
def reply(
    message_id: str = typer.Argument(...),
    body: str | None = typer.Option(None, "--body"),
    body_file: Path | None = typer.Option(None, "--body-file"),
    all_: bool = typer.Option(False, "--all", help="Reply to every recipient too."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Reply in the message's thread."""
    text = _body(body, body_file)
    with signed_client(url, identity) as node:
        info, message = open_mail(node, message_id)
        me = node.signer.did if node.signer else ""
        to = [message["from"]] if message["from"] != me else list(message["to"])
        if all_:
            to += [d for d in [*message["to"], *message.get("cc", [])] if d not in (me, *to)]
        subject = message["subject"]
        subject = subject if subject.lower().startswith("re:") else f"Re: {subject}"
        sent = send_message(node, to=to, subject=subject, body=text, in_reply_to=info["id"])
    if as_json:
        emit_json(sent)
    else:
        console.print(f"replied {sent['id']} in thread {sent['thread_id']}")


@app.command("forward")
def forward(
    message_id: str = typer.Argument(...),
    to: str = typer.Option(..., "--to", help="DIDs, comma-separated."),
    note: str = typer.Option("", "--body", help="A note above the forwarded message."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Forward a message (its text, re-sealed to the new recipients)."""
    with signed_client(url, identity) as node:
        _, message = open_mail(node, message_id)
        quoted = "\n".join(
            [
                note,
                "",
                "---------- forwarded message ----------",
                f"From: {message['from']}",
                f"Sent: {message['sent_at']}",
                f"Subject: {message['subject']}",
                "",
                message["body"],
            ]
        )
        sent = send_message(
            node,
            to=_dids(to),
            subject=f"Fwd: {message['subject']}",
            body=quoted.lstrip("\n"),
            attachments=message.get("attachments") or [],
        )
    if as_json:
        emit_json(sent)
    else:
        console.print(f"forwarded as {sent['id']}")


@app.command("label")
def label(
    message_id: str = typer.Argument(...),
    name: str = typer.Argument(..., help="The label."),
    remove: bool = typer.Option(False, "--remove", help="Take the label off."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Label a message (or take a label off)."""
    with signed_client(url, identity) as node:
        if remove:
            node.request("DELETE", f"/qmail/messages/{message_id}/labels/{name}")
        else:
            node.request("POST", f"/qmail/messages/{message_id}/labels", json={"label": name})
    console.print(f"{'unlabelled' if remove else 'labelled'} {message_id} {name}")


@app.command("archive")
def archive(
    message_id: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move a message to the archive."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/qmail/messages/{message_id}/move", json={"folder": "archive"})
    console.print(f"archived {message_id}")


@app.command("move")
def move(
    message_id: str = typer.Argument(...),
    folder: str = typer.Argument(..., help="inbox archive trash requests"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move a message to a folder (accept a request: move it to inbox)."""
    with signed_client(url, identity) as node:
        node.request("POST", f"/qmail/messages/{message_id}/move", json={"folder": folder})
    console.print(f"moved {message_id} to {folder}")


@app.command("delete")
def delete(
    message_id: str = typer.Argument(...),
    forever: bool = typer.Option(False, "--forever", help="Skip the trash."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move to the trash; a message already in the trash (or --forever) is gone for good."""
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/qmail/messages/{message_id}", params={"forever": forever})
    console.print(f"deleted {message_id}")


@app.command("search")
def search(
    query: str = typer.Argument(..., help="Words to find in sender, subject or body."),
    folder: str | None = typer.Option(None, "--folder"),
    limit: int = typer.Option(200, min=1, max=SEARCH_MAX_MESSAGES, help="Messages to look at."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Search your own mail here: the node holds only ciphertext, so this decrypts locally."""
    words = query.lower().split()
    found = []
    with signed_client(url, identity) as node:
        seen, before = 0, None
        while seen < limit:
            page = _list(node, folder=folder, before=before, limit=min(200, limit - seen))
            for info in page["messages"]:
                _, message = open_mail(node, info["id"])
                haystack = " ".join([message["from"], message["subject"], message["body"]]).lower()
                if all(word in haystack for word in words):
                    found.append({**info, "subject": message["subject"]})
            seen += len(page["messages"])
            before = page["next"]
            if before is None:
                break
    if as_json:
        emit_json(found)
    else:
        emit_table(_rows(found), ["id", "sender", "subject", "folder"], title=f"'{query}'")


@app.command("proof")
def proof(
    message_id: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A message's delivery and read receipts, each checked here with its audit inclusion."""
    with signed_client(url, identity) as node:
        result = node.request("GET", f"/qmail/messages/{message_id}/proof")
        checked = [_check(node, item, result["digest"]) for item in result["receipts"]]
    if as_json:
        emit_json({**result, "checked": checked})
    else:
        emit_table(
            checked,
            ["kind", "recipient", "time", "signature", "audit_seq", "included"],
            title=f"receipts of {message_id}",
        )
    if not all(row["signature"] == "valid" and row["included"] for row in checked):
        raise typer.Exit(1)


def _check(node: Client, item: dict[str, Any], digest: str) -> dict[str, Any]:
    """Verify one receipt: its issuer's signature, its digest, its audit entry's inclusion."""
    from anarq.qerberos import merkle
    from anarq.qerberos.service import tree_head_bytes
    from anarq.qlock import BadSignature, decode_signature
    from anarq.qlock import verify as verify_signature
    from anarq.squid.didkey import did_from_ed25519

    document = item["receipt"]["document"]
    row = {
        "kind": document.get("kind"),
        "recipient": document.get("recipient"),
        "time": document.get("time"),
        "audit_seq": item["audit_seq"],
        "signature": "invalid",
        "included": False,
    }
    inclusion = item["inclusion"]
    head = inclusion["tree_head"] if inclusion else None
    try:
        if document.get("kind") == "delivery":
            if head is None:
                return row
            key = VerifyKey.from_bytes(base64.b64decode(head["signer_key"]))
            if did_from_ed25519(key.ed25519_bytes()) != document.get("issuer"):
                return row
        else:
            raw = _mail_key(node, str(document.get("issuer")))["verify_key"]
            key = VerifyKey.from_bytes(base64.b64decode(raw))
        verify_receipt(document, key)
        if document.get("digest") == digest:
            row["signature"] = "valid"
    except MessageInvalid:
        return row
    leaf = item["audit_leaf"]
    if inclusion is None or head is None or leaf is None:
        return row
    if f"qmail:receipt:{receipt_digest(document)}" not in leaf:
        return row
    root = base64.b64decode(head["root"])
    included = merkle.verify_inclusion(
        merkle.leaf_hash(leaf.encode()),
        inclusion["leaf_index"],
        inclusion["tree_size"],
        [base64.b64decode(step) for step in inclusion["proof"]],
        root,
    )
    try:
        signer_key = VerifyKey.from_bytes(base64.b64decode(head["signer_key"]))
        time = datetime.fromisoformat(head["time"].replace("Z", "+00:00"))
        signed = tree_head_bytes(head["signer"], head["size"], root, time)
        verify_signature(signer_key, signed, decode_signature(head["signature"]))
    except BadSignature:
        included = False
    row["included"] = included
    return row


# Contacts ------------------------------------------------------------------------------------


@contacts_app.command("add")
def contacts_add(
    did: str = typer.Argument(...),
    name: str | None = typer.Option(None, "--name"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Accept mail from DID straight into your inbox."""
    with signed_client(url, identity) as node:
        node.request("POST", "/qmail/contacts", json={"contact": did, "name": name})
    console.print(f"added {did}")


@contacts_app.command("ls")
def contacts_ls(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your contacts."""
    with signed_client(url, identity) as node:
        found = node.request("GET", "/qmail/contacts")
    if as_json:
        emit_json(found)
    else:
        emit_table(found, ["contact", "name", "added_at"], title="contacts")


@contacts_app.command("rm")
def contacts_rm(
    did: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Remove a contact: their mail goes to requests again."""
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/qmail/contacts/{did}")
    console.print(f"removed {did}")


@postage_app.command("set")
def postage_set(
    amount: str = typer.Option(..., "--amount", help="The price, e.g. 0.05"),
    asset: str = typer.Option("PI", "--asset"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Ask postage of mail from strangers: paid to you, it brings their mail to your inbox
    (contacts, and replies in your threads, pay nothing)."""
    with signed_client(url, identity) as node:
        units = to_units(amount, asset_scale(node, asset))
        node.request("PUT", "/qmail/postage", json={"asset": asset, "amount": str(units)})
    console.print(f"mail from strangers reaches your inbox for {amount} {asset}")


@postage_app.command("clear")
def postage_clear(identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION) -> None:
    """Ask no postage: mail from strangers waits in requests."""
    with signed_client(url, identity) as node:
        node.request("DELETE", "/qmail/postage")
    console.print("no postage: mail from strangers waits in requests")


@postage_app.command("show")
def postage_show(
    did: str | None = typer.Argument(None, help="Whose postage [default: yours]."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """What a stranger's mail pays an identity to reach its inbox."""
    with signed_client(url, identity) as node:
        whose = did or (node.signer.did if node.signer else "")
        try:
            price: dict[str, Any] = node.request("GET", f"/qmail/postage/{whose}")
        except ApiError as exc:
            if exc.status != 404:
                raise
            emit_json(None) if as_json else console.print(f"{whose} asks no postage")
            return
        shown = f"{from_units(price['amount'], asset_scale(node, price['asset']))} {price['asset']}"
    emit_json(price) if as_json else console.print(f"{whose} asks {shown}")


@threshold_app.command("set")
def threshold_set(
    score: int = typer.Argument(..., min=0, max=1000, help="A reputation score, 0 to 1,000."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Let mail from strangers with at least this reputation reach your inbox."""
    with signed_client(url, identity) as node:
        node.request("PUT", "/qmail/threshold", json={"min_reputation": score})
    console.print(f"strangers with a reputation of {score} or more reach your inbox")


@threshold_app.command("clear")
def threshold_clear(identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION) -> None:
    """Let no stranger in by reputation (contacts, replies and postage still do)."""
    with signed_client(url, identity) as node:
        node.request("DELETE", "/qmail/threshold")
    console.print("no reputation threshold")


@threshold_app.command("show")
def threshold_show(identity: str | None = IDENTITY_OPTION, url: str | None = URL_OPTION) -> None:
    """Your threshold, if you set one."""
    with signed_client(url, identity) as node:
        try:
            found = node.request("GET", "/qmail/threshold")
        except ApiError as exc:
            if exc.status != 404:
                raise
            console.print("no reputation threshold: strangers' mail waits in requests")
            return
    console.print(f"strangers need a reputation of {found['min_reputation']}")
