"""HTTP routes of Qmail, mounted at `/qmail`. Bodies carry sealed envelopes, never content."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from anarq.gateway.auth import caller
from anarq.kernel.errors import NotFound
from anarq.kernel.guard import Context
from anarq.qmail.models import (
    Contact,
    ContactRequest,
    Folder,
    LabelRequest,
    MailKey,
    MessageInfo,
    MessagePage,
    MoveRequest,
    Postage,
    PostageInfo,
    Proof,
    ReadRequest,
    SendRequest,
    Threshold,
)
from anarq.qmail.service import PAGE_MAX, MailService
from anarq.qmail.tables import DID_MAX, LABEL_MAX

router = APIRouter()

MESSAGE_ID = Path(..., min_length=1, max_length=40, description="A message id.")


async def service(request: Request) -> MailService:
    svc: MailService = request.app.state.node.service("qmail")
    return svc


@router.get("/keys/{did}", response_model=MailKey, summary="The key to seal mail to an identity")
def mail_key(
    did: str = Path(..., min_length=8, max_length=DID_MAX),
    svc: MailService = Depends(service),
) -> MailKey:
    return svc.mail_key(did)


@router.post(
    "/messages",
    status_code=201,
    response_model=MessageInfo,
    summary="Send a sealed message (stored once, delivered to every recipient)",
)
def send(
    body: SendRequest, ctx: Context = Depends(caller), svc: MailService = Depends(service)
) -> MessageInfo:
    return svc.send(ctx, body)


@router.get("/messages", response_model=MessagePage, summary="List your mailbox, newest first")
def list_messages(
    folder: Folder | None = Query(None),
    label: str | None = Query(None, min_length=1, max_length=LABEL_MAX),
    thread: str | None = Query(None, min_length=1, max_length=40),
    before: str | None = Query(None, min_length=1, max_length=40),
    limit: int = Query(50, ge=1, le=PAGE_MAX),
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessagePage:
    return svc.page(ctx, folder=folder, label=label, thread=thread, before=before, limit=limit)


@router.get("/messages/{message_id}", response_model=MessageInfo, summary="One message's metadata")
def get_message(
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessageInfo:
    return svc.message(ctx, message_id)


@router.get(
    "/messages/{message_id}/sealed",
    summary="The sealed envelope, to open with your own key",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def sealed(
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> Response:
    return Response(svc.sealed(ctx, message_id), media_type="application/octet-stream")


@router.post(
    "/messages/{message_id}/read",
    response_model=MessageInfo,
    summary="Mark read; optionally give a signed read receipt",
)
def mark_read(
    body: ReadRequest,
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessageInfo:
    return svc.mark_read(ctx, message_id, body.receipt)


@router.post("/messages/{message_id}/move", response_model=MessageInfo, summary="Move to a folder")
def move(
    body: MoveRequest,
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessageInfo:
    return svc.move(ctx, message_id, body.folder)


@router.delete(
    "/messages/{message_id}",
    status_code=204,
    summary="To the trash; from the trash (or with forever) gone for good",
)
def delete_message(
    message_id: str = MESSAGE_ID,
    forever: bool = Query(False),
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> Response:
    svc.delete(ctx, message_id, forever=forever)
    return Response(status_code=204)


@router.post("/messages/{message_id}/labels", response_model=MessageInfo, summary="Add a label")
def add_label(
    body: LabelRequest,
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessageInfo:
    return svc.label(ctx, message_id, body.label)


@router.delete(
    "/messages/{message_id}/labels/{label}", response_model=MessageInfo, summary="Remove a label"
)
def remove_label(
    message_id: str = MESSAGE_ID,
    label: str = Path(..., min_length=1, max_length=LABEL_MAX),
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> MessageInfo:
    return svc.unlabel(ctx, message_id, label)


@router.get(
    "/messages/{message_id}/proof",
    response_model=Proof,
    summary="Delivery and read receipts with their audit-log inclusion proofs",
)
def proof(
    message_id: str = MESSAGE_ID,
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> Proof:
    return svc.proof(ctx, message_id)


@router.get("/contacts", response_model=list[Contact], summary="Your contacts")
def contacts(ctx: Context = Depends(caller), svc: MailService = Depends(service)) -> list[Contact]:
    return svc.contacts(ctx)


@router.post(
    "/contacts", status_code=201, response_model=Contact, summary="Accept mail from an identity"
)
def add_contact(
    body: ContactRequest, ctx: Context = Depends(caller), svc: MailService = Depends(service)
) -> Contact:
    return svc.add_contact(ctx, body)


@router.delete("/contacts/{did}", status_code=204, summary="Remove a contact")
def remove_contact(
    did: str = Path(..., min_length=1, max_length=DID_MAX),
    ctx: Context = Depends(caller),
    svc: MailService = Depends(service),
) -> Response:
    svc.remove_contact(ctx, did)
    return Response(status_code=204)


@router.get(
    "/postage/{did}",
    response_model=PostageInfo,
    summary="What a stranger's mail pays an identity to reach its inbox (404: nothing)",
)
def postage(
    did: str = Path(..., min_length=8, max_length=DID_MAX), svc: MailService = Depends(service)
) -> PostageInfo:
    found = svc.postage(did)
    if found is None:
        raise NotFound(f"{did[:200]} asks no postage: mail from strangers goes to requests")
    return found


@router.put("/postage", response_model=PostageInfo, summary="Ask postage of strangers' mail")
def set_postage(
    body: Postage, ctx: Context = Depends(caller), svc: MailService = Depends(service)
) -> PostageInfo:
    return svc.set_postage(ctx, body)


@router.get("/threshold", summary="The reputation strangers need to reach your inbox")
def threshold(ctx: Context = Depends(caller), svc: MailService = Depends(service)) -> Threshold:
    found = svc.threshold(ctx)
    if found is None:
        raise NotFound("no threshold: strangers reach your inbox only by postage")
    return found


@router.put("/threshold", response_model=Threshold, summary="Let strangers with this reputation in")
def set_threshold(
    body: Threshold, ctx: Context = Depends(caller), svc: MailService = Depends(service)
) -> Threshold:
    return svc.set_threshold(ctx, body)


@router.delete("/threshold", status_code=204, summary="Let no stranger in by reputation")
def clear_threshold(
    ctx: Context = Depends(caller), svc: MailService = Depends(service)
) -> Response:
    svc.clear_threshold(ctx)
    return Response(status_code=204)


@router.delete("/postage", status_code=204, summary="Ask no postage")
def clear_postage(ctx: Context = Depends(caller), svc: MailService = Depends(service)) -> Response:
    svc.clear_postage(ctx)
    return Response(status_code=204)
