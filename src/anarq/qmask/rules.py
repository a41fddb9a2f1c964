"""Profile rules applied to JSON records — pure: keys and sealing come from the caller.

A rule names a field by a dotted path (`contact.email`; `*` stands for every item of a
list or every value of an object: `visits.*.ip`) and an action:

- `remove`: drops the field.
- `redact`: the value becomes `[REDACTED]`; with arg `pii`, `pii-partial` or `pii-hash`
  only the personal data found in a text value is replaced (as `pii.redact` modes).
- `pseudonym`: a keyed HMAC of the value — the same value gives the same pseudonym for
  one owner, and another for anyone else.
- `generalize`: a coarser value; arg `month`, `year` or `decade` for dates, a width for
  numbers, the characters to keep for other strings.
- `encrypt`: the value sealed to its owner (a Qlock envelope, base64).

A field that is absent is left alone: records differ. Rules run in order.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from anarq.qmask import generalize as gen
from anarq.qmask import pii

ACTIONS: Final = ("remove", "redact", "pseudonym", "generalize", "encrypt")
REDACT_ARGS: Final = ("pii", "pii-partial", "pii-hash")
FIELD_MAX_CHARS: Final = 200
PATH_MAX_SEGMENTS: Final = 16
RULES_MAX: Final = 100
REDACTED: Final = "[REDACTED]"
PSEUDONYM_PREFIX: Final = "pn_"
_SEGMENT = re.compile(r"^(\*|[^.*\s][^.\s]*)$")
_RULE_TEXT = re.compile(r"^(?P<field>[^=]+)=(?P<action>[a-z]+)(?::(?P<arg>.+))?$")


class RuleInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Rule:
    field: str
    action: str
    arg: str | None = None

    def __post_init__(self) -> None:
        check_rule(self)

    @property
    def path(self) -> list[str]:
        return self.field.split(".")

    def describe(self) -> str:
        return f"{self.field}={self.action}" + (f":{self.arg}" if self.arg else "")


def parse_rule(text: str) -> Rule:
    """`field=action[:arg]`, as the CLI takes it: `birth_date=generalize:year`."""
    match = _RULE_TEXT.match(text.strip())
    if match is None:
        raise RuleInvalid(f"a rule reads field=action[:arg], not {text!r}")
    return Rule(match["field"], match["action"], match["arg"])


def check_rule(rule: Rule) -> None:
    if not 1 <= len(rule.field) <= FIELD_MAX_CHARS:
        raise RuleInvalid(f"a field path is 1 to {FIELD_MAX_CHARS} characters")
    segments = rule.field.split(".")
    if len(segments) > PATH_MAX_SEGMENTS or not all(_SEGMENT.match(s) for s in segments):
        raise RuleInvalid(
            f"{rule.field!r}: a path is up to {PATH_MAX_SEGMENTS} dot-separated names or '*'"
        )
    if rule.action not in ACTIONS:
        raise RuleInvalid(f"unknown action {rule.action!r}; actions are {', '.join(ACTIONS)}")
    if rule.action in ("remove", "pseudonym", "encrypt") and rule.arg is not None:
        raise RuleInvalid(f"{rule.action} takes no argument")
    if rule.action == "redact" and rule.arg not in (None, *REDACT_ARGS):
        raise RuleInvalid(f"redact takes no argument or one of {', '.join(REDACT_ARGS)}")
    if rule.action == "generalize" and rule.arg is not None and rule.arg not in gen.DATE_LEVELS:
        try:
            width = float(rule.arg)
        except ValueError:
            raise RuleInvalid(
                f"generalize takes {', '.join(gen.DATE_LEVELS)} or a positive number"
            ) from None
        if not 0 < width < 1e15:
            raise RuleInvalid("a generalization width is positive")


def check_rules(rules: Sequence[Rule]) -> None:
    if len(rules) > RULES_MAX:
        raise RuleInvalid(f"a profile has at most {RULES_MAX} rules")


@dataclass(frozen=True)
class Keys:
    """What rules need from outside: the owner's pseudonym key, and sealing to the owner."""

    pseudonym_key: bytes
    seal: Callable[[bytes], bytes] | None = None
    regions: Sequence[str] = field(default=pii.DEFAULT_REGIONS)

    def pseudonym(self, value: Any) -> str:
        digest = hmac.new(self.pseudonym_key, canonical(value), hashlib.sha256).digest()
        return PSEUDONYM_PREFIX + base64.b32encode(digest[:15]).decode().lower()


def canonical(value: Any) -> bytes:
    """One byte string per JSON value: `{"b":1,"a":2}` and `{"a":2,"b":1}` are one value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def apply_rules(record: Any, rules: Sequence[Rule], keys: Keys) -> Any:
    """A masked copy of `record` (the input is not changed)."""
    masked = json.loads(json.dumps(record))
    for rule in rules:
        masked = _apply(masked, rule.path, rule, keys)
    return masked


_REMOVE = object()


def _apply(node: Any, path: list[str], rule: Rule, keys: Keys) -> Any:
    head, rest = path[0], path[1:]
    if isinstance(node, dict):
        names = list(node) if head == "*" else [head] if head in node else []
        for name in names:
            changed = (
                _apply(node[name], rest, rule, keys) if rest else _transform(node[name], rule, keys)
            )
            if changed is _REMOVE:
                del node[name]
            else:
                node[name] = changed
    elif isinstance(node, list) and head == "*":
        items = [
            _apply(item, rest, rule, keys) if rest else _transform(item, rule, keys)
            for item in node
        ]
        node[:] = [item for item in items if item is not _REMOVE]
    return node


def _transform(value: Any, rule: Rule, keys: Keys) -> Any:
    if rule.action == "remove":
        return _REMOVE
    if value is None:
        return None  # nothing to hide
    if rule.action == "redact":
        return _redact(value, rule.arg, keys)
    if rule.action == "pseudonym":
        return keys.pseudonym(value)
    if rule.action == "generalize":
        return generalize_value(value, rule.arg)
    assert rule.action == "encrypt"
    if keys.seal is None:
        raise RuleInvalid("encrypt needs an owner to seal to")
    return base64.b64encode(keys.seal(canonical(value))).decode("ascii")


def _redact(value: Any, arg: str | None, keys: Keys) -> Any:
    if arg is None or not isinstance(value, str):
        return REDACTED
    mode: pii.Mode = {"pii": "mask", "pii-partial": "partial", "pii-hash": "hash"}[arg]  # type: ignore[assignment]
    return pii.redact(value, mode=mode, key=keys.pseudonym_key, regions=keys.regions).text


def generalize_value(value: Any, arg: str | None) -> Any:
    """Dates to a month (or `year`, `decade`), numbers to a range of width `arg` (10), other
    strings to their first `arg` characters (half of them) followed by `*`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return gen.SUPPRESSED
    if isinstance(value, int | float):
        if arg in gen.DATE_LEVELS:
            raise RuleInvalid(f"generalize:{arg} is for dates; numbers take a width")
        return gen.number_range(value, _number(arg) if arg else 10)
    day = gen.parse_date(value)
    if day is not None:
        level = arg if arg in gen.DATE_LEVELS else "month"
        return gen.date_level(day, level)
    if arg in gen.DATE_LEVELS:
        return gen.SUPPRESSED  # asked for a date, found none: hide it rather than leak it
    keep = int(_number(arg)) if arg else len(value) // 2
    return gen.prefix(value, keep)


def _number(arg: str | None) -> float:
    assert arg is not None
    width = float(arg)
    return int(width) if width.is_integer() else width
