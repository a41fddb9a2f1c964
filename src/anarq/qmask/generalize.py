"""Coarser values: numbers to ranges, dates to months or years, strings to prefixes.

Shared by profile rules (`generalize`) and k-anonymity, so a value generalized either
way reads the same.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Final

SUPPRESSED: Final = "*"
DATE_LEVELS: Final = ("day", "month", "year", "decade")


def number_range(value: float, width: float) -> str:
    """The bucket of `width` that holds `value`: `30-39` for integers, `[2.5,5)` otherwise."""
    assert width > 0, "a range has a positive width"
    low = math.floor(value / width) * width
    if isinstance(value, int) and float(width).is_integer():
        low, step = int(low), int(width)
        return f"{low}-{low + step - 1}" if step > 1 else str(low)
    return f"[{low:g},{low + width:g})"


def parse_date(value: str) -> date | None:
    """An ISO 8601 date or date-time (`2024-03-05`, `2024-03-05T10:00:00Z`), else None."""
    if len(value) < 10 or value[4] != "-":
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def date_level(day: date, level: str) -> str:
    if level == "day":
        return day.isoformat()
    if level == "month":
        return f"{day.year:04d}-{day.month:02d}"
    if level == "year":
        return f"{day.year:04d}"
    if level == "decade":
        return f"{day.year // 10 * 10:04d}s"
    raise ValueError(f"unknown date level {level!r}; levels are {', '.join(DATE_LEVELS)}")


def prefix(value: str, keep: int) -> str:
    """The first `keep` characters, the rest as `*`: `75011` → `750**`."""
    keep = max(0, min(keep, len(value)))
    return value[:keep] + SUPPRESSED * (len(value) - keep)
