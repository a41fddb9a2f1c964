"""One detector per kind of personal data: find candidates by pattern, keep what validates.

A pattern alone finds too much (any 16 digits, any four dotted numbers), so every
detector confirms its candidates the way the data itself can be confirmed: a checksum
(Luhn for cards, ISO 7064 mod 97 for IBANs, base58check/bech32 for Bitcoin, the 11-test
for Dutch BSNs, the DNI letter), a numbering plan (`phonenumbers`), an address parser
(`ipaddress`), a calendar (`datetime`). Where a value has no checksum and its shape is
common (a date, nine digits) it counts only next to words that say what it is.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum import bitcoin, iban, luhn
from stdnum.es import dni, nie
from stdnum.nl import bsn
from stdnum.us import ssn

# How far before a candidate we look for the words that say what it is.
CONTEXT_CHARS = 40


@dataclass(frozen=True)
class Candidate:
    type: str
    start: int
    end: int
    score: float


def _before(text: str, start: int, chars: int = CONTEXT_CHARS) -> str:
    return text[max(0, start - chars) : start].lower()


def _has_context(text: str, start: int, words: re.Pattern[str], chars: int = CONTEXT_CHARS) -> bool:
    return words.search(_before(text, start, chars)) is not None


def _labelled(text: str, start: int, words: re.Pattern[str], chars: int = CONTEXT_CHARS) -> bool:
    """`words` come shortly before `start` with no other number between: "BSN 123… Ref 456…"
    labels the first number, not the second."""
    before = _before(text, start, chars)
    found = list(words.finditer(before))
    return bool(found) and not _DIGIT.search(before[found[-1].end() :])


# E-mail ---------------------------------------------------------------------------------

_EMAIL = re.compile(
    # Not after `:` or `/`: `ssh://git@host` and `https://user:pw@host` are URLs.
    r"(?<![\w.%+:/!#$&'*=?^`{|}~-])"
    r"[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])"
)
# Endings that are file extensions and no top-level domain: `icon@2x.png` is an asset.
_NOT_TLDS = frozenset(
    {"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "ico", "tif", "tiff", "heic", "css"}
    | {"js", "mjs", "pdf", "txt", "html", "htm", "php", "json", "xml", "yaml", "yml", "csv"}
)


def emails(text: str) -> Iterator[Candidate]:
    for match in _EMAIL.finditer(text):
        if match.group(1).lower() in _NOT_TLDS:
            continue
        yield Candidate("EMAIL", match.start(), match.end(), 0.95)


# Phone numbers --------------------------------------------------------------------------

_PHONE_WORDS = re.compile(
    r"\b(phone|tel|telephone|call|mobile|cell|fax|contact|reach|whatsapp|sms|text me)\b"
)
_DIGIT = re.compile(r"\d")
PHONE_MIN_DIGITS = 7


def phones(text: str, regions: Sequence[str]) -> Iterator[Candidate]:
    """Numbers that are valid in a numbering plan: international (`+…`) anywhere, national
    ones for `regions` (ISO 3166 codes, tried in order)."""
    if len(_DIGIT.findall(text)) < PHONE_MIN_DIGITS:
        return
    found: list[tuple[int, int]] = []
    for position, region in enumerate(regions or ("ZZ",)):
        # The first pass finds every `+…` number; later ones look for national numbers
        # only, which in most plans start with a trunk prefix: no `0…` in the text, no pass.
        if position and not _may_hold_national(text, region):
            continue
        # Strict grouping: the digits are grouped as the numbering plan groups them (or
        # not at all), so "011-215-1846" is not read as a French number.
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
        ):
            if any(match.start < end and start < match.end for start, end in found):
                continue
            found.append((match.start, match.end))
            score = _phone_score(text, match, region)
            if score > 0:
                yield Candidate("PHONE", match.start, match.end, score)


_TRUNK_PREFIXED: dict[str, re.Pattern[str] | None] = {}


def _may_hold_national(text: str, region: str) -> bool:
    if region not in _TRUNK_PREFIXED:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = metadata.national_prefix if metadata is not None else None
        _TRUNK_PREFIXED[region] = (
            re.compile(rf"(?<![\d.:/-]){re.escape(prefix)}\d") if prefix else None
        )
    pattern = _TRUNK_PREFIXED[region]
    return pattern is None or pattern.search(text) is not None


_DECIMAL = re.compile(r"^\d+[.,]\d+$")
_CARD_SHAPED = re.compile(r"^\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}$")


def _phone_score(text: str, match: phonenumbers.PhoneNumberMatch, region: str) -> float:
    raw = match.raw_string
    digits = len(_DIGIT.findall(raw))
    if not PHONE_MIN_DIGITS <= digits <= 15 or _DECIMAL.match(raw) or _CARD_SHAPED.match(raw):
        return 0.0  # too short, longer than E.164 allows, a decimal number, a card's shape
    if _DATE.fullmatch(raw) or _SSN.fullmatch(raw):
        return 0.0
    if _VERSION_WORDS.search(_before(text, match.start, 24)):
        return 0.0
    context = _has_context(text, match.start, _PHONE_WORDS)
    if raw.startswith("+"):
        score = 0.85
    elif match.number.country_code != phonenumbers.country_code_for_region(region):
        # Dialled through an exit code (`011 …`, `00 …`): rare in writing, common in codes.
        score = 0.4
    elif raw.isdigit():
        # One unbroken run of digits is more often an order or tracking number.
        score = 0.45
    else:
        score = 0.75
    return score + (0.1 if context else 0.0)


# Payment cards --------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?!\w|[.,-]\d)")
_CARD_WORDS = re.compile(r"\b(card|visa|mastercard|amex|credit|debit|cc|pan)\b")


def _card_issuer_known(digits: str) -> bool:
    """The number starts as an issuer's range does, for a length that issuer uses."""
    n = len(digits)
    two, four = int(digits[:2]), int(digits[:4])
    if digits[0] == "4":
        return n in (13, 16, 19)  # Visa
    if 51 <= two <= 55 or 2221 <= four <= 2720:
        return n == 16  # Mastercard
    if two in (34, 37):
        return n == 15  # American Express
    if digits.startswith("6011") or two == 65 or 644 <= int(digits[:3]) <= 649:
        return 16 <= n <= 19  # Discover
    if 3528 <= four <= 3589:
        return 16 <= n <= 19  # JCB
    if two in (36, 38) or 300 <= int(digits[:3]) <= 305:
        return 14 <= n <= 19  # Diners Club
    if two == 62:
        return 16 <= n <= 19  # UnionPay
    if two == 50 or 56 <= two <= 69:
        return 13 <= n <= 19  # Maestro (12-digit ones exist, too rare to tell from other ids)
    return False


def cards(text: str) -> Iterator[Candidate]:
    for match in _CARD.finditer(text):
        raw = match.group()
        separators = set(re.sub(r"\d", "", raw))
        if len(separators) > 1:
            continue  # "4111 1111-1111 1111" is no way anyone writes a card number
        digits = re.sub(r"\D", "", raw)
        if not 13 <= len(digits) <= 19 or not _card_issuer_known(digits):
            continue
        if not luhn.is_valid(digits):
            continue
        score = 0.9 + (0.05 if _has_context(text, match.start(), _CARD_WORDS) else 0.0)
        yield Candidate("CREDIT_CARD", match.start(), match.end(), score)


# IBANs ----------------------------------------------------------------------------------

_IBAN = re.compile(
    r"(?<![\w])[A-Z]{2}\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|[A-Z0-9]{11,30})(?!\w)"
)


def ibans(text: str) -> Iterator[Candidate]:
    for match in _IBAN.finditer(text):
        raw = match.group()
        # The last printed group may be followed by an unrelated short word in capitals:
        # try the whole candidate, then without its trailing groups.
        while True:
            if iban.is_valid(raw):
                yield Candidate("IBAN", match.start(), match.start() + len(raw), 0.95)
                break
            if " " not in raw[5:]:
                break
            raw = raw.rsplit(" ", 1)[0]


# IP addresses ---------------------------------------------------------------------------

_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
# "version 1.2.3.4" is a version, not an address.
_VERSION_WORDS = re.compile(
    r"\b(version|ver|v|release|rel|build|firmware|fw|rev|revision|patch|update|upgrade|"
    r"sdk|api|os|android|ios|chrome|firefox|python|node|kernel|package|pkg|driver)"
    r"\.?\s*[:=#]?\s*$"
)
_IP_WORDS = re.compile(r"\b(ip|ipv4|ipv6|address|addr|host|server|from|client|login|connect)\b")


def ip_addresses(text: str) -> Iterator[Candidate]:
    for match in _IPV4.finditer(text):
        try:
            ipaddress.IPv4Address(match.group())
        except ValueError:
            continue
        before = _before(text, match.start(), 24)
        if _VERSION_WORDS.search(before):
            continue
        score = 0.85 + (0.1 if _IP_WORDS.search(before) else 0.0)
        yield Candidate("IP_ADDRESS", match.start(), match.end(), score)
    for match in _IPV6.finditer(text):
        raw = match.group()
        if raw.count(":") < 2 or ("::" not in raw and raw.count(":") < 7):
            continue  # "10:45:30" is a time
        try:
            ipaddress.IPv6Address(raw)
        except ValueError:
            continue
        yield Candidate("IP_ADDRESS", match.start(), match.end(), 0.9)


# Dates of birth -------------------------------------------------------------------------

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = r"(?P<mname>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DATE = re.compile(
    r"(?<![\w/.-])(?:"
    r"(?P<iy>\d{4})-(?P<im>\d{1,2})-(?P<id>\d{1,2})"
    r"|(?P<a>\d{1,2})[/.-](?P<b>\d{1,2})[/.-](?P<y>\d{4})"
    rf"|(?P<d1>\d{{1,2}})(?:st|nd|rd|th)? {_MONTH},? (?P<y1>\d{{4}})"
    rf"|{_MONTH.replace('mname', 'mname2')} (?P<d2>\d{{1,2}})(?:st|nd|rd|th)?,? (?P<y2>\d{{4}})"
    r")(?![\w/-]|\.\d)",
    re.IGNORECASE,
)
_BIRTH_WORDS = re.compile(
    r"\b(?:born|birth|birthday|birthdate|dob|date of birth|geboren|née|nee)\b"
    r"|\bd\.o\.b\b|\bb\.\s"
)
OLDEST_YEAR = 1900


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return OLDEST_YEAR <= year <= date.today().year


def _date_parts(match: re.Match[str]) -> bool:
    g = match.groupdict()
    if g["iy"]:
        return _is_date(int(g["iy"]), int(g["im"]), int(g["id"]))
    if g["y"]:
        a, b, year = int(g["a"]), int(g["b"]), int(g["y"])
        return _is_date(year, b, a) or _is_date(year, a, b)  # day-first or month-first
    if g["y1"]:
        return _is_date(int(g["y1"]), _MONTHS[g["mname"].lower()], int(g["d1"]))
    return _is_date(int(g["y2"]), _MONTHS[g["mname2"].lower()], int(g["d2"]))


def dates_of_birth(text: str) -> Iterator[Candidate]:
    """Calendar dates that follow words about birth; other dates are no one's in particular."""
    for match in _DATE.finditer(text):
        if not _date_parts(match):
            continue
        if _labelled(text, match.start(), _BIRTH_WORDS, 30):
            yield Candidate("DATE_OF_BIRTH", match.start(), match.end(), 0.85)


# URLs carrying credentials --------------------------------------------------------------

_URL_USERINFO = re.compile(
    r"\b[A-Za-z][A-Za-z0-9+.-]{1,15}://(?P<userinfo>[^\s:/?#@]+:[^\s/?#@]+)@[A-Za-z0-9\[]"
)


def url_credentials(text: str) -> Iterator[Candidate]:
    """The `user:password` of a URL: the secret part, so the rest of the URL stays readable."""
    for match in _URL_USERINFO.finditer(text):
        yield Candidate("URL_CREDENTIALS", match.start("userinfo"), match.end("userinfo"), 0.97)


# Crypto-currency addresses --------------------------------------------------------------

_BITCOIN = re.compile(
    r"(?<![\w])(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71}"
    r"|BC1[02-9AC-HJ-NP-Z]{11,71})(?!\w)"
)


def crypto_addresses(text: str) -> Iterator[Candidate]:
    for match in _BITCOIN.finditer(text):
        if bitcoin.is_valid(match.group()):
            yield Candidate("CRYPTO_ADDRESS", match.start(), match.end(), 0.95)


# National identifiers -------------------------------------------------------------------

_SSN = re.compile(r"(?<![\w-])\d{3}-\d{2}-\d{4}(?!\w|-\d)")
_SSN_WORDS = re.compile(r"\b(ssn|social security|social sec)\b")
_DNI = re.compile(r"(?<![\w-])(?:\d{8}|[XYZ]\d{7})-?[A-Z](?!\w)")
_BSN = re.compile(r"(?<![\w.,-])(?:\d{9}|\d{4}\.\d{2}\.\d{3})(?!\w|[.,-]\d)")
_BSN_WORDS = re.compile(r"\b(bsn|burgerservicenummer|sofinummer|sofi)\b")


def national_ids(text: str) -> Iterator[Candidate]:
    for match in _SSN.finditer(text):
        if ssn.is_valid(match.group()):
            context = _labelled(text, match.start(), _SSN_WORDS)
            yield Candidate("US_SSN", match.start(), match.end(), 0.9 if context else 0.7)
    for match in _DNI.finditer(text):
        value = match.group()
        if (dni if value[0].isdigit() else nie).is_valid(value):
            yield Candidate("ES_DNI", match.start(), match.end(), 0.85)
    for match in _BSN.finditer(text):
        if bsn.is_valid(match.group()) and _labelled(text, match.start(), _BSN_WORDS):
            yield Candidate("NL_BSN", match.start(), match.end(), 0.85)


def structured_runs(text: str) -> list[tuple[int, int]]:
    """Spans shaped like an IBAN or a card number, valid or not: digits inside them belong
    to them, and are no phone number or national id of their own."""
    runs = [(m.start(), m.end()) for m in _IBAN.finditer(text)]
    runs += [
        (m.start(), m.end())
        for m in _CARD.finditer(text)
        if len(set(re.sub(r"\d", "", m.group()))) <= 1
        and 13 <= len(re.sub(r"\D", "", m.group())) <= 19
    ]
    return runs


def not_phones(text: str) -> list[tuple[int, int]]:
    """Spans no phone number is in: IBAN- and card-shaped runs, calendar dates, dotted quads."""
    return (
        structured_runs(text)
        + [(m.start(), m.end()) for m in _DATE.finditer(text) if _date_parts(m)]
        + [(m.start(), m.end()) for m in _IPV4.finditer(text)]
    )


Detector = Callable[[str], Iterator[Candidate]]
