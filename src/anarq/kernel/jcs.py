"""RFC 8785 JSON Canonicalization Scheme (JCS), with a fast path.

`rfc8785` implements the scheme in Python, which makes it the slowest step of checking a
signed vote. Most documents the node signs hold only objects with ASCII keys, strings,
booleans, null and integers a double represents exactly. For those, JCS is exactly what
the standard library's encoder writes with sorted keys, no spaces and no ASCII escaping:
- keys: JCS sorts by UTF-16 code units, which for ASCII is the order `sort_keys` gives;
- strings: both escape `"`, `\\` and the controls U+0000 to U+001F the same way (`\\b \\t
  \\n \\f \\r`, else `\\u00xx` in lower case) and write everything else as UTF-8;
- integers up to 2^53 - 1 in magnitude: JCS writes doubles the way ECMAScript does,
  which for these is their plain decimal digits.
Anything else (floats, larger integers, non-ASCII keys) goes to `rfc8785`. The two agree
on every document the fast path takes; a property test holds them to it, and the
published RFC 8785 vectors pass through this function.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

_SAFE_INTEGER = 2**53 - 1
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def dumps(value: Any) -> bytes:
    """The JCS bytes of `value`; `rfc8785`'s errors for what JCS cannot represent."""
    if _simple(value):
        return _ENCODER.encode(value).encode("utf-8")
    return rfc8785.dumps(value)


def _simple(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if item is None or isinstance(item, (str, bool)):
            continue
        if isinstance(item, int):
            if -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                continue
            return False
        if isinstance(item, dict):
            for key in item:
                if not isinstance(key, str) or not key.isascii():
                    return False
            stack.extend(item.values())
            continue
        if isinstance(item, (list, tuple)):
            stack.extend(item)
            continue
        return False
    return True
