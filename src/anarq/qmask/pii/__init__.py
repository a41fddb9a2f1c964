"""Find and redact personal data in text — pure functions, usable without a node.

    >>> from anarq.qmask import pii
    >>> [e.type for e in pii.detect("write to ana@example.org or call +44 20 7946 0958")]
    ['EMAIL', 'PHONE']
    >>> pii.redact("write to ana@example.org").text
    'write to [EMAIL]'

Every entity carries its type, its span (`start`, `end`: Python string offsets) and a
score in [0, 1]. Overlapping candidates are settled by score, then length: one span of
text is one entity. `detectors.py` says how each kind is found and confirmed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from anarq.qmask.pii import detectors
from anarq.qmask.pii.detectors import Candidate

ENTITY_TYPES: Final = (
    "EMAIL",
    "PHONE",
    "CREDIT_CARD",
    "IBAN",
    "IP_ADDRESS",
    "DATE_OF_BIRTH",
    "URL_CREDENTIALS",
    "CRYPTO_ADDRESS",
    "US_SSN",
    "ES_DNI",
    "NL_BSN",
)
Mode = Literal["mask", "partial", "hash"]
MODES: Final = ("mask", "partial", "hash")
# National numbers are tried for these regions; `+…` numbers are found for every country.
DEFAULT_REGIONS: Final = ("US", "GB", "DE", "FR")
DEFAULT_MIN_SCORE: Final = 0.5
TEXT_MAX_CHARS: Final = 1_000_000
HASH_HEX_CHARS: Final = 12
HASH_KEY_MIN_BYTES: Final = 16


class TextTooLong(ValueError):
    pass


@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int
    text: str
    score: float


@dataclass(frozen=True)
class Redacted:
    text: str
    entities: list[Entity]


def detect(
    text: str,
    *,
    types: Iterable[str] | None = None,
    regions: Sequence[str] = DEFAULT_REGIONS,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[Entity]:
    """Personal data found in `text`, in order of appearance, scored at least `min_score`."""
    if len(text) > TEXT_MAX_CHARS:
        raise TextTooLong(f"texts are limited to {TEXT_MAX_CHARS} characters")
    wanted = set(ENTITY_TYPES if types is None else types)
    unknown = wanted - set(ENTITY_TYPES)
    if unknown:
        raise ValueError(f"unknown entity types: {', '.join(sorted(unknown))}")
    runs = detectors.structured_runs(text)
    candidates = [
        c for c in _candidates(text, regions) if c.type in wanted and not _inside_another(c, runs)
    ]
    chosen = _without_overlaps(c for c in candidates if c.score >= min_score)
    return [
        Entity(c.type, c.start, c.end, text[c.start : c.end], round(c.score, 3)) for c in chosen
    ]


def _candidates(text: str, regions: Sequence[str]) -> Iterator[Candidate]:
    found = [
        *detectors.emails(text),
        *detectors.url_credentials(text),
        *detectors.cards(text),
        *detectors.ibans(text),
        *detectors.ip_addresses(text),
        *detectors.crypto_addresses(text),
        *detectors.national_ids(text),
        *detectors.dates_of_birth(text),
    ]
    yield from found
    # Phone numbers are looked for last, in a copy where everything already claimed (and
    # every date or dotted quad) is blanked out: fewer digits to try, same offsets.
    blind = [(c.start, c.end) for c in found] + detectors.not_phones(text)
    yield from detectors.phones(_blanked(text, blind), regions)


def _blanked(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _inside_another(candidate: Candidate, runs: list[tuple[int, int]]) -> bool:
    """Part of a longer IBAN- or card-shaped run than itself."""
    return any(
        start <= candidate.start
        and candidate.end <= end
        and (start, end) != (candidate.start, candidate.end)
        for start, end in runs
    )


def _without_overlaps(candidates: Iterable[Candidate]) -> list[Candidate]:
    kept: list[Candidate] = []
    for c in sorted(candidates, key=lambda c: (-c.score, c.start - c.end, c.start)):
        if all(c.end <= k.start or k.end <= c.start for k in kept):
            kept.append(c)
    return sorted(kept, key=lambda c: c.start)


def redact(
    text: str,
    *,
    mode: Mode = "mask",
    key: bytes | None = None,
    types: Iterable[str] | None = None,
    regions: Sequence[str] = DEFAULT_REGIONS,
    min_score: float = DEFAULT_MIN_SCORE,
) -> Redacted:
    """`text` with every entity found replaced.

    - `mask`: `[EMAIL]`, `[PHONE]`, …
    - `partial`: enough left to recognise one's own (`a***@example.org`, `**** 1111`).
    - `hash`: `[EMAIL:3f9a…]`, a keyed HMAC of the normalised value, so one value reads
      the same wherever it appears and cannot be looked up without `key` (required).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; modes are {', '.join(MODES)}")
    if mode == "hash" and (key is None or len(key) < HASH_KEY_MIN_BYTES):
        raise ValueError(f"hash mode needs a key of at least {HASH_KEY_MIN_BYTES} bytes")
    entities = detect(text, types=types, regions=regions, min_score=min_score)
    pieces: list[str] = []
    at = 0
    for entity in entities:
        pieces.append(text[at : entity.start])
        pieces.append(replacement(entity, mode, key))
        at = entity.end
    pieces.append(text[at:])
    return Redacted("".join(pieces), entities)


def replacement(entity: Entity, mode: Mode, key: bytes | None = None) -> str:
    """What `entity` is replaced with in `mode`."""
    if mode == "mask":
        return f"[{entity.type}]"
    if mode == "hash":
        assert key is not None
        digest = hmac.new(key, normalized(entity).encode(), hashlib.sha256).hexdigest()
        return f"[{entity.type}:{digest[:HASH_HEX_CHARS]}]"
    return partial(entity)


def normalized(entity: Entity) -> str:
    """One spelling per value: `(212) 736-5000` and `212.736.5000` hash alike."""
    value = entity.text
    if entity.type in ("PHONE", "CREDIT_CARD", "US_SSN", "NL_BSN"):
        return re.sub(r"[^\d+]", "", value)
    if entity.type in ("IBAN", "ES_DNI"):
        return re.sub(r"[\s-]", "", value).upper()
    if entity.type in ("EMAIL", "IP_ADDRESS"):
        return value.lower()
    return value


def partial(entity: Entity) -> str:
    value = entity.text
    if entity.type == "EMAIL":
        local, domain = value.rsplit("@", 1)
        return f"{local[0]}***@{domain}"
    if entity.type == "IP_ADDRESS":
        if ":" in value:
            return ":".join(value.split(":")[:2]) + ":…"
        return ".".join([*value.split(".")[:2], "*", "*"])
    if entity.type == "URL_CREDENTIALS":
        return value.split(":", 1)[0] + ":***"
    if entity.type == "IBAN":
        return value[:2] + _stars_keeping_last(value[2:], 4)
    if entity.type == "DATE_OF_BIRTH":
        year = re.search(r"\d{4}", value)
        assert year is not None
        head, tail = value[: year.start()], value[year.end() :]
        return _stars_keeping_last(head, 0) + year.group() + _stars_keeping_last(tail, 0)
    return _stars_keeping_last(value, 4 if entity.type == "CREDIT_CARD" else 2)


def _stars_keeping_last(value: str, keep: int) -> str:
    """Letters and digits become `*` except the last `keep`; separators stay."""
    total = sum(ch.isalnum() for ch in value)
    seen = 0
    out = []
    for ch in value:
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)
