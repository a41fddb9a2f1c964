"""What a step can do: module actions, called as the workflow's owner.

Each action calls another module's service with the owner's context, so the module's own
door decides (Qonsent, deny by default): a workflow can do nothing its owner could not.
Each is idempotent under the step's key — a run resumed after a crash repeats the step
it was in, and its effect must happen once: a payment's transfer id is derived from the
key (Qwallet answers `exists` the second time), a share or an album's photos are a set,
a pointer moves only if it is not there already, a metadata-free copy is made once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from anarq.kernel.errors import AnarqError, BadRequest, NotFound
from anarq.kernel.guard import Context
from anarq.qwallet.models import AssetCode, Units

DID = Field(min_length=8, max_length=200)


@dataclass(frozen=True)
class Call:
    """One step's call: as whom, with what, under which idempotency key."""

    ctx: Context
    services: Mapping[str, Any]
    key: str  # stable across retries and restarts: `<run id>.<step id>`


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PayIn(_In):
    to: str = DID
    asset: AssetCode
    amount: Units = Field(gt=0)
    memo: str | None = Field(default=None, max_length=140)


class ShareIn(_In):
    file: str = Field(min_length=1, max_length=1100, description="A file id or a path.")
    grantee: str = DID
    actions: list[str] = Field(default_factory=lambda: ["read"], min_length=1, max_length=6)


class MoveIn(_In):
    source: str = Field(min_length=1, max_length=1100, alias="from")
    target: str = Field(min_length=1, max_length=1100, alias="to")


class AlbumIn(_In):
    album: str = Field(min_length=1, max_length=26)
    photos: list[str] = Field(min_length=1, max_length=100)


class PhotoIn(_In):
    photo: str = Field(min_length=1, max_length=26)


class RedactIn(_In):
    text: str = Field(max_length=100_000)
    mode: str = Field(default="mask", pattern=r"^(mask|type|hash|remove)$")


class PointerIn(_In):
    key: str = Field(min_length=1, max_length=200)
    cid: str = Field(min_length=1, max_length=100)


class ListingIn(_In):
    listing: str = Field(min_length=26, max_length=26)
    price: Units | None = Field(default=None, gt=0)
    status: str | None = Field(default=None, pattern=r"^(active|paused)$")


def _transfer_id(key: str) -> str:
    # Qwallet's client ids are [A-Za-z0-9_-]: the key's digest, stable for the step.
    return "qflow-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def pay(call: Call, given: PayIn) -> dict[str, Any]:
    """Pay from the owner's main account (once: the transfer id is the step's)."""
    from anarq.qwallet.models import PayRequest

    wallet = call.services["qwallet"]
    made = wallet.pay(
        call.ctx,
        PayRequest(
            id=_transfer_id(call.key),
            to=given.to,
            asset=given.asset,
            amount=given.amount,
            memo=given.memo,
        ),
    )
    return {"transfer": made.id, "amount": str(made.amount), "result": made.result}


def share(call: Call, given: ShareIn) -> dict[str, Any]:
    """Share a file of the owner's with someone (nothing new if they hold it already)."""
    drive = call.services["qdrive"]
    file_id = _file_id(call, given.file)
    for held in drive.shares(call.ctx, file_id):
        if held.grantee == given.grantee and set(given.actions) <= set(held.actions):
            return {"file": file_id, "grant": held.grant_id, "new": False}
    made = drive.share(call.ctx, file_id, given.grantee, given.actions, None)
    return {"file": file_id, "grant": made.grant_id, "new": True}


def move(call: Call, given: MoveIn) -> dict[str, Any]:
    """Move or rename a file (done already if it is at the target and not the source)."""
    drive = call.services["qdrive"]
    try:
        moved = drive.move(call.ctx, given.source, given.target)
    except NotFound:
        row = drive.resolve(call.ctx, given.target)  # moved before a restart: done
        return {"files": [row["id"]]}
    return {"files": [f.id for f in moved]}


def add_to_album(call: Call, given: AlbumIn) -> dict[str, Any]:
    album = call.services["qpic"].add_to_album(call.ctx, given.album, given.photos)
    return {"album": album.id, "photos": album.photos}


def strip(call: Call, given: PhotoIn) -> dict[str, Any]:
    """The photo's metadata-free copy (EXIF, GPS, XMP removed), made once."""
    return {"file": call.services["qpic"].clean_copy(call.ctx, given.photo)}


def redact(call: Call, given: RedactIn) -> dict[str, Any]:
    """Text with its personal data redacted (Qmask): changes nothing."""
    from anarq.qmask.models import RedactRequest

    done = call.services["qmask"].redact(call.ctx, RedactRequest(text=given.text, mode=given.mode))
    return {"text": done.text, "found": len(done.entities)}


def point(call: Call, given: PointerIn) -> dict[str, Any]:
    """Point a key of the owner's namespace at a CID (no new version if it does)."""
    from anarq.qindex.models import PointerPut

    pointers = call.services["qindex"].pointers
    owner = call.ctx.actor.id
    try:
        current = pointers.get(call.ctx, owner, given.key)
        if current.cid == given.cid:
            return {"key": given.key, "version": current.version, "new": False}
    except NotFound:
        pass
    made = pointers.put(call.ctx, given.key, PointerPut(cid=given.cid))
    return {"key": given.key, "version": made.version, "new": True}


def change_listing(call: Call, given: ListingIn) -> dict[str, Any]:
    from anarq.qmarket.models import ListingChange

    fields = given.model_dump(exclude_none=True, exclude={"listing"})
    if not fields:
        raise BadRequest("name a price or a status to change")
    made = call.services["qmarket"].change_listing(call.ctx, given.listing, ListingChange(**fields))
    return {"listing": made.id, "price": str(made.price), "status": made.status}


def _file_id(call: Call, ref: str) -> str:
    row = call.services["qdrive"].resolve(call.ctx, ref)
    return str(row["id"])


@dataclass(frozen=True)
class Action:
    name: str
    summary: str
    takes: type[_In]
    run: Callable[[Call, Any], dict[str, Any]]

    def check(self, given: Any) -> _In:
        """The step's input, validated; `BadRequest` saying what is wrong."""
        try:
            return self.takes.model_validate(given)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            raise BadRequest(f"{self.name}: {where}: {first['msg']}") from None


ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        Action("qwallet.pay", "pay someone from your main account", PayIn, pay),
        Action("qdrive.share", "share a file of yours", ShareIn, share),
        Action("qdrive.move", "move or rename a file of yours", MoveIn, move),
        Action("qpic.add_to_album", "add photos to an album of yours", AlbumIn, add_to_album),
        Action("qpic.strip", "a photo's copy without metadata", PhotoIn, strip),
        Action("qmask.redact", "redact personal data from text", RedactIn, redact),
        Action("qindex.point", "point a key of yours at a CID", PointerIn, point),
        Action(
            "qmarket.change_listing",
            "change a listing's price or status",
            ListingIn,
            change_listing,
        ),
    )
}


def action(name: str) -> Action:
    found = ACTIONS.get(name)
    if found is None:
        raise BadRequest(f"unknown action {name!r}; actions are {', '.join(sorted(ACTIONS))}")
    return found


def retryable(exc: AnarqError) -> bool:
    """A failure worth another try: anything but bad input, a refusal, or something that
    is not there (a conflict, funds short, a backend away may clear)."""
    return exc.status not in (400, 401, 403, 404, 413)
