"""Who is acting, and the gate every state change passes: authorize → change → record.

The gateway turns a request into an `Actor`; services receive it inside a
`Context` and open their write transaction through `Kernel.change`, which asks
the node's `Guard` first and records the verdict after. Deny by default: a guard
allows only what its policy names.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from anarq.kernel.errors import Forbidden, Unauthenticated
from anarq.kernel.ids import new_id

# `client`: an application signed in at the OpenID provider's token endpoint (it acts for
# nobody; policies that allow identities do not allow it).
ActorKind = Literal["anonymous", "operator", "identity", "node", "client"]
Verdict = Literal["allow", "deny"]
ACTIONS = ("read", "write", "delete", "share", "admin", "execute")

audit_log = logging.getLogger("anarq.audit")

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@dataclass(frozen=True)
class Actor:
    id: str
    kind: ActorKind

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


@dataclass(frozen=True)
class SignedRequest:
    """What the gateway hands an authenticator of a signed HTTP request."""

    method: str
    url: str
    headers: list[tuple[str, str]]
    body: bytes


ANONYMOUS = Actor(id="anonymous", kind="anonymous")
OPERATOR = Actor(id="operator", kind="operator")


@dataclass(frozen=True)
class Context:
    """The actor behind a call and the ids that tie its effects together."""

    actor: Actor
    request_id: str = field(default_factory=new_id)
    correlation_id: str | None = None
    # Verified delegations the request carries (Qonsent capabilities); policies read them.
    capabilities: tuple[object, ...] = ()

    @classmethod
    def system(cls) -> Context:
        """The node acting on its own behalf (start-up, schedulers)."""
        return cls(actor=Actor(id="system", kind="node"))

    def identity(self, what: str) -> str:
        """The caller's DID, for what only an identity has (`what`: "a mailbox", …):
        401 for an anonymous caller, 403 for the operator or the node."""
        if not self.actor.authenticated:
            raise Unauthenticated(f"{what} is reached with a signed request or a session")
        if self.actor.kind != "identity":
            raise Forbidden(f"{what} belongs to an identity: sign the request as one")
        return self.actor.id


Policy = Callable[[Context, str, str], bool]
Recorder = Callable[[Context, str, str, Verdict, "Connection | None"], None]


class Guard:
    """Deny by default: an action is allowed only if some policy allows it.

    Policies and recorders are added by modules when the node is built (Qonsent adds
    grant checks, Qerberos the verifiable audit log). With none added, only the node's
    operator and the node itself may act, and verdicts go to the `anarq.audit` log.
    """

    def __init__(self) -> None:
        self.policies: list[Policy] = [operator_policy]
        self.recorders: list[Recorder] = [log_recorder]

    def authorize(self, ctx: Context, action: str, resource: str) -> None:
        """Return if some policy allows `action` on `resource`; raise otherwise."""
        assert action in ACTIONS, f"unknown action {action!r}"
        if any(policy(ctx, action, resource) for policy in self.policies):
            return
        if not ctx.actor.authenticated:
            raise Unauthenticated(f"{action} on {resource} needs an authenticated caller")
        raise Forbidden(f"{ctx.actor.id} may not {action} {resource}")

    def record(
        self,
        ctx: Context,
        action: str,
        resource: str,
        verdict: Verdict,
        tx: Connection | None = None,
    ) -> None:
        """Append the verdict to every audit trail; never secrets, never content.

        With `tx`, the record commits or rolls back with the change it describes.
        """
        for recorder in self.recorders:
            recorder(ctx, action, resource, verdict, tx)


def operator_policy(ctx: Context, action: str, resource: str) -> bool:
    """The node's operator and the node itself may do anything on their node."""
    return ctx.actor.kind in ("operator", "node")


def log_recorder(
    ctx: Context, action: str, resource: str, verdict: Verdict, tx: Connection | None
) -> None:
    audit_log.info(
        json.dumps(
            {
                "actor": ctx.actor.id,
                "action": action,
                "resource": resource,
                "verdict": verdict,
                "request_id": ctx.request_id,
            },
            separators=(",", ":"),
        )
    )
