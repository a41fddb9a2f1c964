"""How text becomes terms and snippets: the rules both backends share."""

from __future__ import annotations

from anarq.qindex.analysis import Analyzed, snippet, terms, typo_budget


def test_terms_are_folded_words_and_digits() -> None:
    assert terms("Crème BRÛLÉE, café_au_lait v2.0!") == [
        "creme",
        "brulee",
        "cafe",
        "au",
        "lait",
        "v2",
        "0",
    ]
    assert terms('"NEAR(a* b)" AND -c ^d') == ["near", "a", "b", "and", "c", "d"]
    assert terms("x" * 65 + " kept") == ["kept"]


def test_a_title_comes_before_the_body() -> None:
    doc = Analyzed.of("Trip", "trip plans")
    assert doc.title == ["trip"] and doc.body == ["trip", "plans"]
    assert doc.distinct == {"trip", "plans"}


def test_typo_budget_grows_with_length() -> None:
    assert [typo_budget(w) for w in ("cat", "bird", "giraffes")] == [0, 1, 2]


def test_snippet_marks_matches_and_escapes_the_rest() -> None:
    body = "Intro words. " + "filler " * 40 + "the <b>volcano</b> & the crater. " + "tail " * 40
    cut = snippet(body, lambda term: term in {"volcano", "crater"})
    assert cut.startswith("…") and cut.endswith("…")
    assert "&lt;b&gt;<mark>volcano</mark>&lt;/b&gt; &amp; the <mark>crater</mark>" in cut
    assert snippet("Short one.", lambda term: False) == "Short one."
    assert snippet("", lambda term: True) == ""
