"""Qmask: privacy transforms — profiles for records, PII in text, image metadata, k-anonymity.

Profiles belong to an identity (or are the node's built-ins) and are versioned: saving a
profile under a name you already use adds a version; applying names a version or takes
the latest. Another identity may read and apply your profile only with a Qonsent grant
of `read` on `qmask:profile:<id>`.

The transforms themselves change nothing: any signed-in identity may run them (`execute`
on `qmask:transform`). Pseudonyms and sealing are always the data owner's — over HTTP,
the caller's: the same value pseudonymizes alike for one owner and differently for
another, and `encrypt` seals to the owner's own key. No content is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Sequence
from typing import Any, Final

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError

from anarq.kernel import Kernel
from anarq.kernel.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
)
from anarq.kernel.guard import Context
from anarq.kernel.ids import new_id
from anarq.kernel.subject import ExportItem, json_item
from anarq.node.service import NodeService
from anarq.qlock import seal
from anarq.qmask import kanon, pii, rules, tables
from anarq.qmask.builtin import BUILTIN
from anarq.qmask.image import StrippedImage, strip_image
from anarq.qmask.models import (
    AnonymizeRequest,
    AnonymizeResult,
    Applied,
    DetectRequest,
    EntityInfo,
    ImageOptions,
    Profile,
    ProfileRequest,
    ProfileSummary,
    RedactedText,
    RedactRequest,
    RiskInfo,
    RuleSpec,
)
from anarq.qonsent.service import QonsentService
from anarq.squid.service import SquidService

TRANSFORM_RESOURCE: Final = "qmask:transform"
_PSEUDONYM_INFO: Final = b"anarq/qmask/pseudonym-key/v1"


def profile_resource(profile_id: str) -> str:
    return f"qmask:profile:{profile_id}"


def space_resource(did: str) -> str:
    """Where an identity's own profiles are created."""
    return f"qmask:space:{did}"


class QmaskService:
    erase_order = 30

    def __init__(
        self, kernel: Kernel, node: NodeService, squid: SquidService, qonsent: QonsentService
    ) -> None:
        self.k = kernel
        self.node = node
        self.squid = squid
        self.qonsent = qonsent

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        with self.k.db.read() as conn:
            profiles = _profile_export(conn, did)
        yield json_item("profiles.json", profiles)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete the person's profiles and every version of them."""
        p, v = tables.profiles, tables.profile_versions
        with self.k.change(ctx, "delete", f"qmask:subject:{did}") as tx:
            ids = list(tx.execute(select(p.c.id).where(p.c.owner == did)).scalars())
            tx.execute(delete(v).where(v.c.profile_id.in_(ids)))
            removed = tx.execute(delete(p).where(p.c.id.in_(ids))).rowcount
        return {"profiles": removed}

    # Policy --------------------------------------------------------------------------

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """A guard policy: identities run transforms and keep their own profiles."""
        if ctx.actor.kind != "identity":
            return False
        if resource == TRANSFORM_RESOURCE:
            return action == "execute"
        return resource == space_resource(ctx.actor.id) and action == "write"

    def _identity(self, ctx: Context) -> str:
        return ctx.identity("a privacy profile")

    # Keys ----------------------------------------------------------------------------

    def pseudonym_key(self, owner: str) -> bytes:
        """The owner's pseudonym key: derived from the node's key, different per owner."""
        secret = hashlib.sha256(_PSEUDONYM_INFO + self.node.identity.signing_key().ed25519_seed())
        return hmac.new(secret.digest(), owner.encode(), hashlib.sha256).digest()

    def _keys(self, owner: str, regions: Sequence[str] = pii.DEFAULT_REGIONS) -> rules.Keys:
        def seal_to_owner(plaintext: bytes) -> bytes:
            return seal(plaintext, [self.squid.recipient_key(owner)])

        return rules.Keys(self.pseudonym_key(owner), seal_to_owner, tuple(regions))

    # Profiles ------------------------------------------------------------------------

    def create_profile(self, ctx: Context, request: ProfileRequest) -> Profile:
        """Save a profile in the caller's space; an existing name gets a new version."""
        owner = self._identity(ctx)
        if request.name in BUILTIN:
            raise Conflict(f"{request.name!r} is a built-in profile; choose another name")
        checked = _checked_rules(request.rules)
        now = self.k.clock.now()
        p, v = tables.profiles, tables.profile_versions
        existing = self._profile_row(owner, request.name)
        resource = profile_resource(existing["id"]) if existing else space_resource(owner)
        with self.k.change(ctx, "write", resource) as tx:
            if existing is None:
                profile_id, version = new_id(), 1
                try:
                    tx.execute(
                        insert(p).values(
                            id=profile_id,
                            owner=owner,
                            name=request.name,
                            version=1,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                except IntegrityError:
                    raise Conflict(f"{request.name} was created meanwhile; try again") from None
                self.qonsent.register_owner(tx, profile_resource(profile_id), owner)
            else:
                profile_id, version = existing["id"], existing["version"] + 1
                moved = tx.execute(
                    update(p)
                    .where(p.c.id == profile_id, p.c.version == existing["version"])
                    .values(version=version, updated_at=now)
                ).rowcount
                if moved != 1:
                    raise Conflict(f"{request.name} changed meanwhile; try again")
            tx.execute(
                insert(v).values(
                    profile_id=profile_id,
                    version=version,
                    description=request.description,
                    rules=[rule.model_dump() for rule in checked],
                    image=request.image.model_dump() if request.image else None,
                    created_at=now,
                    created_by=ctx.actor.id,
                )
            )
            self.k.bus.publish(
                tx,
                "qmask.profile.saved",
                {
                    "profile_id": profile_id,
                    "owner": owner,
                    "name": request.name,
                    "version": version,
                },
                actor=ctx.actor.id,
                subject=profile_resource(profile_id),
                correlation_id=ctx.correlation_id or ctx.request_id,
            )
        return self._load(owner, request.name, version)

    def profile(
        self, ctx: Context, name: str, *, owner: str | None = None, version: int | None = None
    ) -> Profile:
        """A profile by name: the caller's own, another identity's (with a grant), or a
        built-in. Reading another's profile without a grant is refused and recorded."""
        caller = self._identity(ctx)
        found = self._find(owner or caller, name, version, fall_back=owner is None)
        if found.id is not None and found.owner != caller:
            self.k.check(ctx, "read", profile_resource(found.id))
        return found

    def profiles(self, ctx: Context) -> list[ProfileSummary]:
        """The caller's profiles, then the node's built-ins."""
        owner = self._identity(ctx)
        p, v = tables.profiles, tables.profile_versions
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(p.c.name, p.c.owner, p.c.version, p.c.updated_at, v.c.description, v.c.rules)
                .join(v, (v.c.profile_id == p.c.id) & (v.c.version == p.c.version))
                .where(p.c.owner == owner)
                .order_by(p.c.name)
            ).all()
        mine = [
            ProfileSummary(
                name=row.name,
                owner=row.owner,
                version=row.version,
                builtin=False,
                description=row.description,
                rules=len(row.rules),
                updated_at=row.updated_at,
            )
            for row in rows
        ]
        return mine + [
            ProfileSummary(
                name=b.name,
                owner=None,
                version=b.version,
                builtin=True,
                description=b.description,
                rules=len(b.rules),
            )
            for b in BUILTIN.values()
        ]

    def _find(self, owner: str, name: str, version: int | None, *, fall_back: bool) -> Profile:
        if self._profile_row(owner, name) is not None:
            return self._load(owner, name, version)
        if fall_back and name in BUILTIN:
            builtin = BUILTIN[name]
            if version not in (None, builtin.version):
                raise NotFound(f"built-in profile {name} has only version {builtin.version}")
            return builtin
        raise NotFound(f"no profile {name!r}" + ("" if fall_back else f" of {owner}"))

    def _profile_row(self, owner: str, name: str) -> RowMapping | None:
        p = tables.profiles
        with self.k.db.read() as conn:
            return (
                conn.execute(select(p).where(p.c.owner == owner, p.c.name == name))
                .mappings()
                .first()
            )

    def _load(self, owner: str, name: str, version: int | None) -> Profile:
        head = self._profile_row(owner, name)
        if head is None:
            raise NotFound(f"no profile {name!r}")
        v = tables.profile_versions
        wanted = version or head["version"]
        with self.k.db.read() as conn:
            row = (
                conn.execute(select(v).where(v.c.profile_id == head["id"], v.c.version == wanted))
                .mappings()
                .first()
            )
        if row is None:
            raise NotFound(f"profile {name} has no version {wanted} (latest: {head['version']})")
        return Profile(
            id=head["id"],
            owner=owner,
            name=name,
            version=wanted,
            latest_version=head["version"],
            builtin=False,
            description=row["description"],
            rules=[RuleSpec(**rule) for rule in row["rules"]],
            image=ImageOptions(**row["image"]) if row["image"] is not None else None,
            created_at=row["created_at"],
            created_by=row["created_by"],
        )

    # Applying profiles ---------------------------------------------------------------

    def apply(
        self,
        ctx: Context,
        profile: str,
        records: list[Any],
        *,
        owner: str | None = None,
        version: int | None = None,
    ) -> Applied:
        """Mask the caller's records with a profile (theirs, granted to them, or built-in)."""
        caller = self._identity(ctx)
        self.k.check(ctx, "execute", TRANSFORM_RESOURCE)
        found = self.profile(ctx, profile, owner=owner, version=version)
        keys = self._keys(caller)
        masked = [_apply(record, found.rules, keys) for record in records]
        return Applied(profile=found.name, owner=found.owner, version=found.version, records=masked)

    def apply_profile(
        self,
        owner: str,
        profile_name: str,
        record: Any,
        *,
        version: int | None = None,
        profile_owner: str | None = None,
    ) -> Any:
        """For other modules: mask `owner`'s record with a profile of theirs (or a built-in,
        or `profile_owner`'s). The calling module has authorized the action it serves."""
        found = self._find(
            profile_owner or owner, profile_name, version, fall_back=profile_owner is None
        )
        return _apply(record, found.rules, self._keys(owner))

    # Text ----------------------------------------------------------------------------

    def detect(self, ctx: Context, request: DetectRequest) -> list[EntityInfo]:
        self.k.check(ctx, "execute", TRANSFORM_RESOURCE)
        try:
            found = pii.detect(
                request.text,
                types=request.types,
                regions=request.regions,
                min_score=request.min_score,
            )
        except pii.TextTooLong as exc:
            raise PayloadTooLarge(str(exc)) from None
        return [_entity(e) for e in found]

    def redact(self, ctx: Context, request: RedactRequest) -> RedactedText:
        """Hash mode uses the caller's pseudonym key: one value, one token, for them alone."""
        caller = self._identity(ctx)
        self.k.check(ctx, "execute", TRANSFORM_RESOURCE)
        try:
            done = pii.redact(
                request.text,
                mode=request.mode,
                key=self.pseudonym_key(caller),
                types=request.types,
                regions=request.regions,
                min_score=request.min_score,
            )
        except pii.TextTooLong as exc:
            raise PayloadTooLarge(str(exc)) from None
        return RedactedText(text=done.text, entities=[_entity(e) for e in done.entities])

    # Images --------------------------------------------------------------------------

    def strip_image(self, data: bytes, *, keep_icc: bool = True) -> StrippedImage:
        """For other modules: `data` without metadata, upright. Raises a 4xx error for
        anything but a JPEG, PNG, WebP or GIF image."""
        return strip_image(data, keep_icc=keep_icc)

    def mask_image(self, owner: str, profile_name: str, data: bytes) -> StrippedImage:
        """For other modules: strip an image as `owner`'s profile (or a built-in) says."""
        found = self._find(owner, profile_name, None, fall_back=True)
        if found.image is None:
            raise BadRequest(f"profile {profile_name} has no rules for images")
        return strip_image(data, keep_icc=found.image.keep_icc)

    def strip(
        self, ctx: Context, data: bytes, *, keep_icc: bool = True, profile: str | None = None
    ) -> StrippedImage:
        self.k.check(ctx, "execute", TRANSFORM_RESOURCE)
        if profile is not None:
            found = self.profile(ctx, profile)
            if found.image is None:
                raise BadRequest(f"profile {profile} has no rules for images")
            keep_icc = found.image.keep_icc
        return strip_image(data, keep_icc=keep_icc)

    # Tables --------------------------------------------------------------------------

    def anonymize(self, ctx: Context, request: AnonymizeRequest) -> AnonymizeResult:
        self.k.check(ctx, "execute", TRANSFORM_RESOURCE)
        if (request.rows is None) == (request.csv is None):
            raise BadRequest("send either rows or csv")
        try:
            if request.csv is not None:
                columns, rows = kanon.read_csv(request.csv)
            else:
                rows = list(request.rows or [])
                columns = list(dict.fromkeys(name for row in rows for name in row))
            done = kanon.anonymize(
                rows,
                request.quasi_identifiers,
                request.k,
                max_suppression=request.max_suppression,
                drop=request.drop,
            )
        except kanon.AnonymizationInvalid as exc:
            raise BadRequest(str(exc)) from None
        kept_columns = [c for c in columns if c not in request.drop]
        return AnonymizeResult(
            rows=done.rows if request.csv is None else None,
            csv=kanon.write_csv(kept_columns, done.rows) if request.csv is not None else None,
            k=done.k,
            k_achieved=done.k_achieved,
            suppressed=done.suppressed,
            classes=done.classes,
            generalization=done.generalization,
            risk=RiskInfo(highest=done.risk.highest, average=done.risk.average),
            risk_before=RiskInfo(
                highest=done.risk_before.highest, average=done.risk_before.average
            ),
        )


def _checked_rules(specs: Sequence[RuleSpec]) -> list[RuleSpec]:
    try:
        rules.check_rules([rules.Rule(s.field, s.action, s.arg) for s in specs])
    except rules.RuleInvalid as exc:
        raise BadRequest(str(exc)) from None
    return list(specs)


def _apply(record: Any, specs: Sequence[RuleSpec], keys: rules.Keys) -> Any:
    try:
        return rules.apply_rules(
            record, [rules.Rule(s.field, s.action, s.arg) for s in specs], keys
        )
    except rules.RuleInvalid as exc:
        raise BadRequest(str(exc)) from None


def _entity(entity: pii.Entity) -> EntityInfo:
    return EntityInfo(
        type=entity.type,
        start=entity.start,
        end=entity.end,
        text=entity.text,
        score=entity.score,
    )


def _profile_export(conn: Any, did: str) -> list[dict[str, Any]]:
    p, v = tables.profiles, tables.profile_versions
    found = []
    for row in conn.execute(select(p).where(p.c.owner == did).order_by(p.c.name)).mappings():
        history = conn.execute(
            select(v).where(v.c.profile_id == row["id"]).order_by(v.c.version)
        ).mappings()
        found.append({**dict(row), "versions": [dict(x) for x in history]})
    return found
