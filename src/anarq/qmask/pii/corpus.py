"""A labelled corpus for measuring the detectors: deterministic, generated from a seed.

Each sample is a sentence with true personal data at known spans, mixed with hard
negatives — values that look like personal data and are not: order numbers that fail
Luhn, IBANs with a wrong check, version strings shaped like IP addresses, dates with no
birth nearby, ticket numbers in a phone's shape with an impossible area code, retina
asset names that look like e-mail addresses, URLs with a user and no password…

True values are valid by construction (checksums computed here, phone numbers checked
against the numbering plan), so the corpus measures the detectors against the data's
own rules, not against themselves. It is still our own corpus: real text is messier.
"""

from __future__ import annotations

import hashlib
import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

import phonenumbers
from stdnum import iban as iban_check
from stdnum import luhn
from stdnum.bitcoin import bech32_checksum

from anarq.qmask.pii import Entity

Span = tuple[str, int, int]


@dataclass(frozen=True)
class Sample:
    text: str
    spans: tuple[Span, ...]


@dataclass
class _Builder:
    parts: list[str] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    length: int = 0

    def add(self, text: str, entity: str | None = None) -> None:
        if entity is not None:
            self.spans.append((entity, self.length, self.length + len(text)))
        self.parts.append(text)
        self.length += len(text)

    def sample(self) -> Sample:
        return Sample("".join(self.parts), tuple(self.spans))


FIRST = ["ana", "ben", "chloe", "dmitri", "eva", "farid", "grace", "hiro", "ines", "jon"]
LAST = ["smith", "garcia", "muller", "rossi", "kowalski", "okafor", "tanaka", "dubois"]
DOMAINS = ["example.org", "mail.example.com", "corp.example.net", "uni.example.ac.uk"]
PASSWORDS = ["s3cr3t", "hunter2", "pa55-word", "x9Tq!z"]
FILLER = [
    "Thanks for the update.",
    "Please see the attached notes.",
    "The meeting moved to Thursday.",
    "Let me know if anything changes.",
    "We shipped 3 boxes and 12 pallets last week.",
    "Room 101 is free after 2 pm.",
    "Budget is 1,250,000 for the year.",
    "The report has 48 pages.",
    "",
]


def _email(r: random.Random) -> str:
    first, last = r.choice(FIRST), r.choice(LAST)
    local = r.choice([f"{first}.{last}", f"{first[0]}{last}{r.randint(1, 99)}", f"{first}_{last}"])
    return f"{local}@{r.choice(DOMAINS)}"


_US_AREAS = [201, 206, 212, 213, 305, 312, 404, 415, 503, 617, 646, 702, 718, 773, 818, 917]


def _phone(r: random.Random) -> str:
    for _ in range(100):
        kind = r.randrange(5)
        if kind == 0:
            text = f"({r.choice(_US_AREAS)}) {r.randint(201, 989)}-{r.randint(0, 9999):04d}"
            region = "US"
        elif kind == 1:
            text = f"{r.choice(_US_AREAS)}-{r.randint(201, 989)}-{r.randint(0, 9999):04d}"
            region = "US"
        elif kind == 2:
            text = f"+1 {r.choice(_US_AREAS)} {r.randint(201, 989)} {r.randint(0, 9999):04d}"
            region = "US"
        elif kind == 3:
            text = f"+44 20 7{r.randint(100, 999)} {r.randint(0, 9999):04d}"
            region = "GB"
        else:
            text = f"+49 30 {r.randint(1000000, 9999999)}"
            region = "DE"
        if r.random() < 0.3 and region == "US" and kind != 2:
            text = text.replace("-", ".").replace("(", "").replace(") ", ".")
        elif r.random() < 0.1 and region == "US" and kind != 2:
            text = "".join(ch for ch in text if ch.isdigit())  # unbroken: a known weak spot
        if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
            return text
    raise AssertionError("no valid phone number generated")


_CARD_PREFIXES = [("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15)]
_CARD_PREFIXES += [("6011", 16), ("65", 16), ("3530", 16), ("4", 13)]


def _card_digits(r: random.Random) -> str:
    prefix, length = r.choice(_CARD_PREFIXES)
    body = prefix + "".join(str(r.randrange(10)) for _ in range(length - len(prefix) - 1))
    return body + luhn.calc_check_digit(body)


def _grouped(digits: str, r: random.Random) -> str:
    separator = r.choice([" ", "-", ""])
    if len(digits) == 15:
        return separator.join([digits[:4], digits[4:10], digits[10:]])
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def _card(r: random.Random) -> str:
    return _grouped(_card_digits(r), r)


def _order_number(r: random.Random) -> str:
    """Sixteen digits in a card's shape that fail Luhn: not a card."""
    digits = _card_digits(r)
    wrong = str((int(digits[-1]) + r.randint(1, 9)) % 10)
    return _grouped(digits[:-1] + wrong, r)


def _iban_check(country: str, bban: str) -> str:
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def _digits(r: random.Random, n: int) -> str:
    return "".join(str(r.randrange(10)) for _ in range(n))


def _letters(r: random.Random, n: int) -> str:
    return "".join(r.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(n))


# Country → (letters, digits) of its basic bank account number (BBAN).
_BBAN_SHAPES: Final = {"DE": (0, 18), "GB": (4, 14), "NL": (4, 10), "FR": (0, 23)}


def _iban(r: random.Random, *, valid: bool = True) -> str:
    for _ in range(100):
        country = r.choice(sorted(_BBAN_SHAPES))
        letters, digits = _BBAN_SHAPES[country]
        bban = _letters(r, letters) + _digits(r, digits)
        check = _iban_check(country, bban)
        if not valid:
            check = f"{(int(check) + r.randint(1, 50)) % 97 + 2:02d}"
        compact = country + check + bban
        if iban_check.is_valid(compact) != valid:
            continue
        if r.random() < 0.7:
            return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
        return compact
    raise AssertionError("no IBAN generated")


def _ip(r: random.Random) -> str:
    kind = r.randrange(3)
    if kind == 0:
        return f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}"
    if kind == 1:
        return str(ipaddress.IPv4Address(r.randint(0x0B000000, 0xDF000000)))
    return str(ipaddress.IPv6Address((0x2001_0DB8 << 96) | r.getrandbits(64)))


_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July"]


def _date(r: random.Random, year_from: int = 1940, year_to: int = 2010) -> str:
    y, m, d = r.randint(year_from, year_to), r.randint(1, 7), r.randint(1, 28)
    return r.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}/{m:02d}/{y}",
            f"{d}.{m}.{y}",
            f"{_MONTH_NAMES[m - 1]} {d}, {y}",
            f"{d} {_MONTH_NAMES[m - 1]} {y}",
        ]
    )


_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _base58check(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    number = int.from_bytes(data, "big")
    out = ""
    while number:
        number, rest = divmod(number, 58)
        out = _B58[rest] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def _bech32(r: random.Random) -> str:
    program = r.randbytes(20)
    bits = "".join(f"{byte:08b}" for byte in program)
    data = [0] + [int(bits[i : i + 5], 2) for i in range(0, len(bits), 5)]
    expanded = [ord(c) >> 5 for c in "bc"] + [0] + [ord(c) & 31 for c in "bc"]
    polymod = bech32_checksum(expanded + data + [0] * 6) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return "bc1" + "".join(_B32[v] for v in data + checksum)


def _bitcoin(r: random.Random, *, valid: bool = True) -> str:
    if valid and r.random() < 0.3:
        return _bech32(r)
    address = _base58check(bytes([r.choice([0x00, 0x05])]) + r.randbytes(20))
    if valid:
        return address
    position = r.randrange(5, len(address))
    swapped = _B58[(_B58.index(address[position]) + 1) % 58]
    return address[:position] + swapped + address[position + 1 :]


def _ssn(r: random.Random, *, valid: bool = True) -> str:
    area = r.choice([r.randint(1, 665), r.randint(667, 899)]) if valid else r.choice([0, 666, 912])
    return f"{area:03d}-{r.randint(1, 99):02d}-{r.randint(1, 9999):04d}"


def _dni(r: random.Random) -> str:
    number = r.randint(10_000_000, 99_999_999)
    return f"{number}{'TRWAGMYFPDXBNJZSQVHLCKE'[number % 23]}"


def _bsn(r: random.Random) -> str:
    while True:
        digits = [r.randrange(10) for _ in range(8)]
        total = sum(d * w for d, w in zip(digits, range(9, 1, -1), strict=True))
        last = total % 11
        if last < 10 and digits[0] != 0:
            return "".join(map(str, digits)) + str(last)


# Sentences ------------------------------------------------------------------------------

Positive = Callable[[random.Random], list[tuple[str, str | None]]]


def _positives() -> dict[str, Positive]:
    return {
        "EMAIL": lambda r: [
            (r.choice(["Write to ", "Contact: ", "cc ", "Reply-to "]), None),
            (_email(r), "EMAIL"),
            (r.choice([" today.", ".", " for details.", ""]), None),
        ],
        "PHONE": lambda r: [
            (
                r.choice(["Call me at ", "Phone: ", "reach her on ", "Mobile ", "My number is "]),
                None,
            ),
            (_phone(r), "PHONE"),
            (r.choice([" after 6.", ".", " any time", ""]), None),
        ],
        "CREDIT_CARD": lambda r: [
            (r.choice(["Card number ", "Paid with ", "Use card ", "Visa: "]), None),
            (_card(r), "CREDIT_CARD"),
            (r.choice([" exp 09/27.", ".", " please refund."]), None),
        ],
        "IBAN": lambda r: [
            (r.choice(["Transfer to IBAN ", "Account ", "Pay into "]), None),
            (_iban(r), "IBAN"),
            (r.choice([" by Friday.", ".", " (savings)."]), None),
        ],
        "IP_ADDRESS": lambda r: [
            (r.choice(["Login from ", "Blocked IP ", "Server at ", "Request came from "]), None),
            (_ip(r), "IP_ADDRESS"),
            (r.choice([" at 03:12.", ".", " yesterday."]), None),
        ],
        "DATE_OF_BIRTH": lambda r: [
            (r.choice(["Born ", "DOB: ", "Date of birth ", "She was born on ", "birthday "]), None),
            (_date(r), "DATE_OF_BIRTH"),
            (r.choice([" in Lyon.", ".", ""]), None),
        ],
        "URL_CREDENTIALS": lambda r: [
            (r.choice(["postgres", "https", "ftp", "redis"]) + "://", None),
            (
                f"{r.choice(FIRST)}:{r.choice(['s3cr3t', 'hunter2', 'pa55-word', 'x9Tq!z'])}",
                "URL_CREDENTIALS",
            ),
            (f"@{r.choice(['db', 'files', 'cache'])}.example.com/{r.choice(['app', 'x'])}", None),
        ],
        "CRYPTO_ADDRESS": lambda r: [
            (r.choice(["Send BTC to ", "Tip jar: ", "wallet "]), None),
            (_bitcoin(r), "CRYPTO_ADDRESS"),
            (r.choice([" thanks.", ".", ""]), None),
        ],
        "US_SSN": lambda r: [
            (r.choice(["SSN ", "Social security number: ", "ssn: ", "Applicant "]), None),
            (_ssn(r), "US_SSN"),
            (r.choice([" on file.", ".", ""]), None),
        ],
        "ES_DNI": lambda r: [
            (r.choice(["DNI ", "Documento: ", "NIF "]), None),
            (_dni(r), "ES_DNI"),
            (r.choice([".", " verificado.", ""]), None),
        ],
        "NL_BSN": lambda r: [
            (r.choice(["BSN ", "burgerservicenummer: ", "Her BSN is "]), None),
            (_bsn(r), "NL_BSN"),
            (r.choice([".", " (checked).", ""]), None),
        ],
    }


def _version(r: random.Random) -> str:
    return f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 255)}"


def _amount(r: random.Random) -> str:
    return f"${r.randint(1, 999)},{r.randint(100, 999)},{r.randint(100, 999)}.{r.randint(10, 99)}"


def _ticket(r: random.Random) -> str:
    area = r.choice(["123", "011", "100", "199"])  # no US area code starts with 0 or 1
    return f"{area}-{r.randint(200, 999)}-{r.randint(1000, 9999)}"


def _time(r: random.Random) -> str:
    return f"{r.randint(10, 23)}:{r.randint(10, 59)}:{r.randint(10, 59)}"


def _coordinates(r: random.Random) -> str:
    return (
        f"{r.randint(1, 89)}.{r.randint(1000, 9999)}, {r.randint(1, 179)}.{r.randint(1000, 9999)}"
    )


def _negatives() -> list[Callable[[random.Random], str]]:
    return [
        lambda r: f"Order {_order_number(r)} has shipped.",
        lambda r: f"Reference {_order_number(r)}.",
        lambda r: f"Upgrade to version {_version(r)} tonight.",
        lambda r: f"build {_version(r)} passed",
        lambda r: f"Firmware v{_version(r)} is out.",
        lambda r: f"Ticket {_ticket(r)} is closed.",
        lambda r: f"Tracking {_digits(r, 12)} via courier.",
        lambda r: f"The total was {_amount(r)}.",
        lambda r: (
            f"ISBN 978-{r.randint(0, 9)}-{r.randint(10, 99)}-{_digits(r, 6)}-{r.randint(0, 9)}."
        ),
        lambda r: f"Meeting on {_date(r, 2019, 2024)} at {_time(r)}.",
        lambda r: f"Invoice dated {_date(r, 2015, 2024)}, due in 30 days.",
        lambda r: f"Use icon@{r.randint(2, 3)}x.png for retina screens.",
        lambda r: f"Follow @{r.choice(FIRST)}: https://social.example/@{r.choice(FIRST)} too.",
        lambda r: f"Clone ssh://git@code.example.org/{r.choice(LAST)}/app.git first.",
        lambda r: f"Old account {_iban(r, valid=False)} was closed.",
        lambda r: f"Wallet id {_bitcoin(r, valid=False)} is invalid.",
        lambda r: f"Case {_ssn(r, valid=False)} was filed.",
        lambda r: f"Ref {r.randint(100000000, 999999999)} in the ledger.",
        lambda r: f"Zip {r.randint(10000, 99999)}-{r.randint(1000, 9999)} area.",
        lambda r: f"Coordinates {_coordinates(r)}.",
        lambda r: f"Scores 10:45:30 and {r.randint(1, 9)}.{r.randint(1, 9)}.{r.randint(1, 9)}.",
    ]


def generate(count: int, seed: int = 0) -> list[Sample]:
    """`count` labelled sentences; the same `count` and `seed` give the same corpus."""
    r = random.Random(seed)  # noqa: S311 - a reproducible corpus, no secret
    positives = _positives()
    kinds = sorted(positives)
    negatives = _negatives()
    samples = []
    for _ in range(count):
        builder = _Builder()
        pieces: list[list[tuple[str, str | None]]] = []
        for _ in range(r.choice([0, 1, 1, 2])):
            pieces.append(positives[r.choice(kinds)](r))
        for _ in range(r.choice([0, 1, 1, 2])):
            pieces.append([(negatives[r.randrange(len(negatives))](r), None)])
        if r.random() < 0.5:
            pieces.append([(r.choice(FILLER), None)])
        r.shuffle(pieces)
        for number, piece in enumerate(pieces):
            if number:
                builder.add(" ")
            for text, entity in piece:
                builder.add(text, entity)
        samples.append(builder.sample())
    return samples


@dataclass
class Tally:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(samples: Sequence[Sample], found: Sequence[Sequence[Entity]]) -> dict[str, Tally]:
    """Per entity type and `"overall"`: a found entity is right when it overlaps a labelled
    span of the same type that no other found entity has matched."""
    tallies: dict[str, Tally] = {"overall": Tally()}
    for sample, entities in zip(samples, found, strict=True):
        unmatched = list(sample.spans)
        for entity in entities:
            match = next(
                (
                    span
                    for span in unmatched
                    if span[0] == entity.type and entity.start < span[2] and span[1] < entity.end
                ),
                None,
            )
            tally = tallies.setdefault(entity.type, Tally())
            if match is None:
                tally.false_positives += 1
                tallies["overall"].false_positives += 1
            else:
                unmatched.remove(match)
                tally.true_positives += 1
                tallies["overall"].true_positives += 1
        for kind, _, _ in unmatched:
            tallies.setdefault(kind, Tally()).false_negatives += 1
            tallies["overall"].false_negatives += 1
    return tallies
