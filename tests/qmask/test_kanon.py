"""k-anonymity: every kept row is in a class of at least k; risk as the prosecutor sees it."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anarq.qmask.kanon import AnonymizationInvalid, anonymize, read_csv, write_csv

QI = ["age", "zip", "born"]


def people(n: int, seed: int = 1) -> list[dict[str, object]]:
    r = random.Random(seed)
    return [
        {
            "name": f"person {i}",
            "age": r.randint(18, 90),
            "zip": str(r.choice([75011, 75012, 69001, 13001]) + r.randint(0, 3)),
            "born": f"19{r.randint(30, 99)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}",
            "diagnosis": r.choice(["flu", "cold", "none"]),
        }
        for i in range(n)
    ]


def class_sizes(rows: list[dict[str, object]], qi: list[str]) -> Counter[tuple[object, ...]]:
    return Counter(tuple(row[c] for c in qi) for row in rows)


def test_every_kept_row_is_in_a_class_of_at_least_k() -> None:
    done = anonymize(people(500), QI, 5, drop=["name"])
    sizes = class_sizes(done.rows, QI)
    assert min(sizes.values()) >= 5 and done.k_achieved == min(sizes.values())
    assert done.suppressed == 500 - len(done.rows) and done.suppressed <= 25
    assert done.classes == len(sizes)
    assert all("name" not in row for row in done.rows)
    assert {row["diagnosis"] for row in done.rows} <= {"flu", "cold", "none"}


def test_risk_is_reported_before_and_after() -> None:
    done = anonymize(people(300), QI, 4)
    assert done.risk_before.highest == 1.0  # raw rows are unique
    assert done.risk.highest == pytest.approx(1 / done.k_achieved, abs=1e-6)
    assert done.risk.highest <= 1 / 4
    assert done.risk.average == pytest.approx(done.classes / len(done.rows), abs=1e-6)


def test_output_is_deterministic() -> None:
    assert anonymize(people(200), QI, 3) == anonymize(people(200), QI, 3)


def test_generalizations_read_as_ranges_months_and_prefixes() -> None:
    done = anonymize(people(400), ["age", "zip"], 2, max_suppression=0.0)
    age = str(done.rows[0]["age"])
    assert "-" in age or age == "*" or age.isdigit()
    assert set(done.generalization) == {"age", "zip"}


def test_too_few_rows_are_all_suppressed() -> None:
    done = anonymize(people(3), QI, 5)
    assert done.rows == [] and done.suppressed == 3 and done.k_achieved == 0


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "a": st.integers(0, 120),
                "b": st.sampled_from(["x1", "x2", "y1", "zz", ""]),
                "c": st.dates().map(lambda d: d.isoformat()),
            }
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(2, 6),
    st.sampled_from([0.0, 0.1, 0.5]),
)
@settings(max_examples=60, deadline=None)
def test_k_holds_for_every_kept_row(rows: list[dict[str, object]], k: int, budget: float) -> None:
    done = anonymize(rows, ["a", "b", "c"], k, max_suppression=budget)
    sizes = class_sizes(done.rows, ["a", "b", "c"])
    assert all(size >= k for size in sizes.values())
    assert len(done.rows) + done.suppressed == len(rows)


@pytest.mark.parametrize(
    ("qi", "k", "message"),
    [([], 3, "quasi-identifier"), (["age"], 1, "k is"), (["shoe"], 3, "no such column")],
)
def test_bad_requests_are_refused(qi: list[str], k: int, message: str) -> None:
    with pytest.raises(AnonymizationInvalid, match=message):
        anonymize(people(10), qi, k)


def test_csv_round_trip() -> None:
    columns, rows = read_csv("age,zip\n34,75011\n35,75012\n")
    assert columns == ["age", "zip"] and rows[1] == {"age": "35", "zip": "75012"}
    assert write_csv(columns, rows) == "age,zip\n34,75011\n35,75012\n"
    with pytest.raises(AnonymizationInvalid):
        read_csv("age\n1,2\n")
