"""Who is acting, and the gate every state change passes: authorize → change → record.

The gateway turns a request into an `Actor`; services receive it inside a
`Context` and open their write transaction through `Kernel.change`, which asks
the node's `Guard` first and records the verdict after. Deny by default: a guard
allows only what its policy names.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Literal, Protocol

from anarq.kernel.errors import Forbidden
from anarq.kernel.ids import new_id

ActorKind = Literal["anonymous", "operator", "identity", "node"]
Verdict = Literal["allow", "deny"]
ACTIONS = ("read", "write", "delete", "share", "admin", "execute")

audit_log = logging.getLogger("anarq.audit")


@dataclass(frozen=True)
class Actor:
    id: str
    kind: ActorKind

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"


ANONYMOUS = Actor(id="anonymous", kind="anonymous")
OPERATOR = Actor(id="operator", kind="operator")


@dataclass(frozen=True)
class Context:
    """The actor behind a call and the ids that tie its effects together."""

    actor: Actor
    request_id: str = field(default_factory=new_id)
    correlation_id: str | None = None

    @classmethod
    def system(cls) -> Context:
        """The node acting on its own behalf (start-up, schedulers)."""
        return cls(actor=Actor(id="system", kind="node"))


class Guard(Protocol):
    def authorize(self, ctx: Context, action: str, resource: str) -> None:
        """Return if `ctx.actor` may do `action` on `resource`; raise `Forbidden` if not."""
        ...

    def record(self, ctx: Context, action: str, resource: str, verdict: Verdict) -> None:
        """Append the outcome to the audit trail: never secrets, never content."""
        ...


class OperatorGuard:
    """The foundation policy: the node's operator and the node itself may change node state.

    Everyone else is refused. Identity-based grants replace this policy when the
    trust core is installed; the audit trail is a structured log until then.
    """

    def authorize(self, ctx: Context, action: str, resource: str) -> None:
        assert action in ACTIONS, f"unknown action {action!r}"
        if ctx.actor.kind in ("operator", "node"):
            return
        if not ctx.actor.authenticated:
            from anarq.kernel.errors import Unauthenticated

            raise Unauthenticated(f"{action} on {resource} needs an authenticated caller")
        raise Forbidden(f"{ctx.actor.id} may not {action} {resource}")

    def record(self, ctx: Context, action: str, resource: str, verdict: Verdict) -> None:
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
