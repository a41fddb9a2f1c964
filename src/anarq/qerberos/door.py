"""The guard at the door: rate limits, lockouts after failed authentication, anomaly signals.

Counters live in each worker's memory (token buckets and sliding windows), so they cost
nothing per request beyond a dictionary lookup; with N workers behind a load balancer
a client gets at most N times the configured rate. Lockouts and anomalies become
security alerts in the database, shared by every worker.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from anarq.kernel.errors import RateLimited

# Bounded memory: the least recently seen keys are forgotten first.
MAX_TRACKED_KEYS = 100_000
FAILURE_WINDOW_SECONDS = 300.0
DENIAL_WINDOW_SECONDS = 300.0
DENIALS_FOR_ANOMALY = 50


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`take(key)` allows `per_minute` requests a minute per key, with that much burst."""

    def __init__(self, per_minute: int) -> None:
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / 60.0
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, what: str) -> None:
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.pop(key, None) or _Bucket(self.capacity, now)
            bucket.tokens = min(
                self.capacity, bucket.tokens + (now - bucket.updated) * self.refill_per_second
            )
            bucket.updated = now
            self._buckets[key] = bucket
            if len(self._buckets) > MAX_TRACKED_KEYS:
                self._buckets.popitem(last=False)
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            wait = (1.0 - bucket.tokens) / self.refill_per_second
        raise RateLimited(
            f"too many requests from this {what}; retry in {wait:.1f} s",
            retry_after_seconds=round(wait, 3),
        )


@dataclass
class _Window:
    events: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class FailureTracker:
    """Counts failures per key in a sliding window; `limit` of them locks the key out."""

    def __init__(
        self, limit: int, lockout_seconds: float, window_seconds: float = FAILURE_WINDOW_SECONDS
    ) -> None:
        self.limit = limit
        self.lockout_seconds = lockout_seconds
        self.window_seconds = window_seconds
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def locked_for(self, key: str) -> float:
        """Seconds left in `key`'s lockout, 0 if none."""
        with self._lock:
            window = self._windows.get(key)
            return max(0.0, window.locked_until - time.monotonic()) if window else 0.0

    def fail(self, key: str) -> bool:
        """Count a failure; True when this one starts a lockout."""
        now = time.monotonic()
        with self._lock:
            window = self._windows.pop(key, None) or _Window()
            self._windows[key] = window
            if len(self._windows) > MAX_TRACKED_KEYS:
                self._windows.popitem(last=False)
            while window.events and window.events[0] < now - self.window_seconds:
                window.events.popleft()
            window.events.append(now)
            if len(window.events) >= self.limit and window.locked_until <= now:
                window.locked_until = now + self.lockout_seconds
                window.events.clear()
                return True
            return False

    def succeed(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
