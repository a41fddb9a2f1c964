"""Tabular k-anonymity with a re-identification risk score — pure and deterministic.

Given rows, the quasi-identifiers (columns that identify in combination: age, ZIP code,
birth date…) and k, every quasi-identifier is generalized along its own ladder —

- numbers: ranges of growing width (1, 2, 5, 10, 20, 50… chosen from the data's span),
- ISO dates: month, year, decade,
- other strings: shorter and shorter prefixes (`75011` → `7501*` → `750**` …),

and each ends in `*`. A greedy search (Datafly with one step of look-ahead) raises one
column at a time, the one whose next step leaves the fewest rows in classes smaller than
k, until at most `max_suppression` of the rows are left in such classes; those rows are
suppressed (left out). Every kept row is then in an equivalence class of at least k rows.

Risk is the prosecutor model (the attacker knows their target is in the data): a record's
risk is 1 / the size of its class; we report the highest and the average, before and
after. Ties are broken by column order, so the same input always gives the same output.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from anarq.qmask import generalize as gen

ROWS_MAX: Final = 100_000
COLUMNS_MAX: Final = 200
QI_MAX: Final = 16
K_MAX: Final = 10_000
STRING_LEVELS_MAX: Final = 24
NICE_STEPS: Final = (1, 2, 5)

Cell = str | int | float | None
Row = Mapping[str, Cell]


class AnonymizationInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Risk:
    highest: float
    average: float


@dataclass(frozen=True)
class Anonymized:
    rows: list[dict[str, Cell]]
    k: int
    k_achieved: int
    suppressed: int
    classes: int
    # Per quasi-identifier, the generalization used: "exact", "range 10", "month", "prefix 3", "*".
    generalization: dict[str, str]
    risk: Risk
    risk_before: Risk


@dataclass(frozen=True)
class _Ladder:
    """How one column is generalized: `steps` levels above exact, the last being `*`."""

    steps: int
    names: list[str]
    value: Callable[[str, int], str]


def anonymize(
    rows: Sequence[Row],
    quasi_identifiers: Sequence[str],
    k: int,
    *,
    max_suppression: float = 0.05,
    drop: Sequence[str] = (),
) -> Anonymized:
    """Generalize and suppress until every kept row shares its quasi-identifiers with at
    least k-1 others."""
    _check(rows, quasi_identifiers, k, max_suppression, drop)
    columns = {qi: [_text(row.get(qi)) for row in rows] for qi in quasi_identifiers}
    ladders = {qi: _ladder(values) for qi, values in columns.items()}
    budget = math.floor(max_suppression * len(rows))
    levels = [0] * len(quasi_identifiers)
    cache: dict[tuple[str, int], list[str]] = {}

    def generalized(position: int, level: int) -> list[str]:
        qi = quasi_identifiers[position]
        if (qi, level) not in cache:
            distinct = {v: ladders[qi].value(v, level) for v in set(columns[qi])}
            cache[(qi, level)] = [distinct[v] for v in columns[qi]]
        return cache[(qi, level)]

    def keys(state: Sequence[int]) -> list[tuple[str, ...]]:
        return list(zip(*(generalized(i, lv) for i, lv in enumerate(state)), strict=True))

    def at_risk(state: Sequence[int]) -> int:
        sizes = Counter(keys(state))
        return sum(size for size in sizes.values() if size < k)

    before = _risk(Counter(keys(levels)).values())
    while at_risk(levels) > budget:
        options = []
        for i, qi in enumerate(quasi_identifiers):
            if levels[i] < ladders[qi].steps:
                trial = [*levels[:i], levels[i] + 1, *levels[i + 1 :]]
                loss = sum(
                    lv / ladders[q].steps for lv, q in zip(trial, quasi_identifiers, strict=True)
                )
                options.append((at_risk(trial), loss, i, trial))
        if not options:
            break  # everything is `*` already: the rest is suppression
        levels = min(options)[3]
    row_keys = keys(levels)
    sizes = Counter(row_keys)
    kept: list[dict[str, Cell]] = []
    for row, key in zip(rows, row_keys, strict=True):
        if sizes[key] < k:
            continue
        out = {name: value for name, value in row.items() if name not in drop}
        for qi, value in zip(quasi_identifiers, key, strict=True):
            out[qi] = value
        kept.append(out)
    kept_sizes = [size for size in sizes.values() if size >= k]
    achieved = min(kept_sizes, default=0)
    assert all(size >= k for size in kept_sizes) and (achieved >= k or not kept)
    return Anonymized(
        rows=kept,
        k=k,
        k_achieved=achieved,
        suppressed=len(rows) - len(kept),
        classes=len(kept_sizes),
        generalization={
            qi: ladders[qi].names[lv] for qi, lv in zip(quasi_identifiers, levels, strict=True)
        },
        risk=_risk(kept_sizes),
        risk_before=before,
    )


def _check(
    rows: Sequence[Row],
    quasi_identifiers: Sequence[str],
    k: int,
    max_suppression: float,
    drop: Sequence[str],
) -> None:
    if not rows:
        raise AnonymizationInvalid("there are no rows to anonymize")
    if len(rows) > ROWS_MAX:
        raise AnonymizationInvalid(f"at most {ROWS_MAX} rows at once")
    if not 1 <= len(quasi_identifiers) <= QI_MAX or len(set(quasi_identifiers)) != len(
        quasi_identifiers
    ):
        raise AnonymizationInvalid(f"name 1 to {QI_MAX} distinct quasi-identifier columns")
    if not 2 <= k <= K_MAX:
        raise AnonymizationInvalid(f"k is 2 to {K_MAX}")
    if not 0 <= max_suppression <= 1:
        raise AnonymizationInvalid("max_suppression is a fraction of the rows, 0 to 1")
    present = set().union(*(row.keys() for row in rows))
    if len(present) > COLUMNS_MAX:
        raise AnonymizationInvalid(f"at most {COLUMNS_MAX} columns")
    missing = [qi for qi in quasi_identifiers if qi not in present]
    if missing:
        raise AnonymizationInvalid(f"no such column: {', '.join(missing)}")
    if set(drop) & set(quasi_identifiers):
        raise AnonymizationInvalid("a column cannot be both dropped and a quasi-identifier")


def _risk(sizes: Any) -> Risk:
    sizes = [size for size in sizes if size > 0]
    if not sizes:
        return Risk(highest=0.0, average=0.0)
    # Average prosecutor risk: the mean over records of 1/|class| = classes / records.
    return Risk(highest=round(1 / min(sizes), 6), average=round(len(sizes) / sum(sizes), 6))


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _ladder(values: list[str]) -> _Ladder:
    present = [v for v in values if v != ""]
    numbers = _numbers(present)
    if present and numbers is not None:
        return _number_ladder(numbers)
    if present and all(gen.parse_date(v) is not None for v in present):
        return _date_ladder()
    return _string_ladder(max((len(v) for v in present), default=0))


def _numbers(values: list[str]) -> list[float] | None:
    out = []
    for value in values:
        try:
            number = float(value)
        except ValueError:
            return None
        if not math.isfinite(number):
            return None
        out.append(number)
    return out


def _number_ladder(numbers: list[float]) -> _Ladder:
    integers = all(n.is_integer() for n in numbers)
    low, high = min(numbers), max(numbers)
    widths: list[float] = []
    exponent = math.floor(math.log10(max(high - low, 1e-9) / 100)) if high > low else 0
    while True:
        for step in NICE_STEPS:
            width = step * 10.0**exponent
            if integers and width < 2:
                continue
            if widths and width <= widths[-1]:
                continue
            widths.append(width)
            if math.floor(low / width) == math.floor(high / width):
                return _make_number_ladder(widths, integers)
        exponent += 1


def _make_number_ladder(widths: list[float], integers: bool) -> _Ladder:
    def value(raw: str, level: int) -> str:
        if raw == "" or level == 0:
            return raw
        if level > len(widths):
            return gen.SUPPRESSED
        number = float(raw)
        width = widths[level - 1]
        if integers:
            return gen.number_range(int(number), int(width) if width.is_integer() else width)
        return gen.number_range(number, width)

    names = ["exact", *(f"range {w:g}" for w in widths), gen.SUPPRESSED]
    return _Ladder(steps=len(widths) + 1, names=names, value=value)


def _date_ladder() -> _Ladder:
    levels = gen.DATE_LEVELS

    def value(raw: str, level: int) -> str:
        if raw == "" or level == 0:
            return raw
        if level >= len(levels):
            return gen.SUPPRESSED
        day = gen.parse_date(raw)
        assert day is not None
        return gen.date_level(day, levels[level])

    return _Ladder(steps=len(levels), names=["exact", *levels[1:], gen.SUPPRESSED], value=value)


def _string_ladder(longest: int) -> _Ladder:
    # Keep one character fewer at each step (more at once for long strings), then `*`.
    stride = max(1, math.ceil(longest / STRING_LEVELS_MAX))
    keeps = list(range(longest - stride, 0, -stride))

    def value(raw: str, level: int) -> str:
        if raw == "" or level == 0:
            return raw
        if level > len(keeps):
            return gen.SUPPRESSED
        return gen.prefix(raw, keeps[level - 1])

    names = ["exact", *(f"prefix {keep}" for keep in keeps), gen.SUPPRESSED]
    return _Ladder(steps=len(keeps) + 1, names=names, value=value)


# CSV ------------------------------------------------------------------------------------


def read_csv(text: str) -> tuple[list[str], list[dict[str, Cell]]]:
    """The header and the rows of a CSV text (values as strings)."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise AnonymizationInvalid("the CSV has no header row")
    columns = list(reader.fieldnames)
    rows: list[dict[str, Cell]] = []
    for row in reader:
        if None in row:
            raise AnonymizationInvalid(f"row {reader.line_num} has more cells than the header")
        rows.append(dict(row))
        if len(rows) > ROWS_MAX:
            raise AnonymizationInvalid(f"at most {ROWS_MAX} rows at once")
    return columns, rows


def write_csv(columns: Sequence[str], rows: Sequence[Mapping[str, Cell]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
