"""Time. Services ask the kernel's clock, never `datetime.now`, so tests can move time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall-clock UTC time."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock(Clock):
    """A clock that stands still until told to move; for tests of expiry and retries."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta


def rfc3339(moment: datetime) -> str:
    """UTC RFC 3339 with millisecond precision and a `Z`, as every API speaks time."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_rfc3339(text: str) -> datetime:
    """An RFC 3339 date-time that names its offset (`Z` or `±hh:mm`); `ValueError` else."""
    if "T" not in text.upper():
        raise ValueError(f"{text!r} is not a date-time")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} names no time zone offset")
    return moment.astimezone(UTC)
