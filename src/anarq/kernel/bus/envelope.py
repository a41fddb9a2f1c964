"""The one event envelope every module speaks, and the subject patterns handlers listen on."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from anarq.kernel.clock import rfc3339

# `<module>.<thing>.<verb>`: lower-case words of letters, digits and underscores.
EVENT_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){2,5}$")
# NATS-style patterns: `*` matches one word, a final `>` matches one or more.
PATTERN_RE = re.compile(r"^(([a-z][a-z0-9_]*|\*)\.)*([a-z][a-z0-9_]*|\*|>)$")


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    time: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    subject: str | None = None
    correlation_id: str | None = None

    def envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "actor": self.actor,
            "subject": self.subject,
            "time": rfc3339(self.time),
            "correlation_id": self.correlation_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_envelope(cls, envelope: Mapping[str, Any]) -> Event:
        return cls(
            id=envelope["id"],
            type=envelope["type"],
            time=datetime.fromisoformat(envelope["time"].replace("Z", "+00:00")),
            data=envelope.get("data") or {},
            actor=envelope.get("actor"),
            subject=envelope.get("subject"),
            correlation_id=envelope.get("correlation_id"),
        )


Handler = Callable[[Connection, Event], None]


@dataclass(frozen=True)
class Subscription:
    """A named handler for events whose type matches `pattern`.

    The handler runs inside a write transaction that also records the event as
    consumed by `name`, so its effects happen once even when delivery repeats.
    """

    name: str
    pattern: str
    handle: Handler
    # A cheap check of the event type, in memory, before any delivery is made: for a
    # handler subscribed broadly (`>`) that wants few of those events.
    wants: Callable[[str], bool] | None = None

    def __post_init__(self) -> None:
        assert PATTERN_RE.match(self.pattern), f"bad event pattern {self.pattern!r}"
        assert re.match(r"^[a-z][a-z0-9_.]*$", self.name), f"bad subscription name {self.name!r}"

    def matches(self, event_type: str) -> bool:
        return pattern_matches(self.pattern, event_type) and (
            self.wants is None or self.wants(event_type)
        )


def pattern_matches(pattern: str, event_type: str) -> bool:
    want = pattern.split(".")
    have = event_type.split(".")
    for index, word in enumerate(want):
        if word == ">":
            return len(have) > index
        if index >= len(have) or (word != "*" and word != have[index]):
            return False
    return len(have) == len(want)
