"""How text becomes terms, and how a snippet is cut: the same rules on both backends.

A term is a run of letters and digits, in Unicode NFC, case-folded, without diacritics
(`Éclair` and `eclair` are one term). Python turns text into terms for the index and for
queries alike, and hands the engines nothing but terms — SQLite FTS5 and PostgreSQL never
parse user text, so FTS syntax (`"`, `*`, `(`, `NEAR`, `AND`) has no meaning in a query:
it is punctuation, or a plain word.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass

# Longer runs are identifiers or hashes, not words anyone types: they are not indexed.
TERM_MAX_CHARS = 64
# A document's distinct terms beyond this are not indexed (PostgreSQL's tsvector must
# stay under 1 MB; a 1 MiB text of natural language holds far fewer).
DOCUMENT_TERMS_MAX = 20_000
# Terms past this position are not indexed (PostgreSQL caps positions at 16,383).
POSITION_MAX = 16_383
SNIPPET_WORDS = 24
# Snippets are cut from the first this-many characters of a body.
SNIPPET_SCAN_CHARS = 64 * 1024
MARK_OPEN, MARK_CLOSE = "<mark>", "</mark>"
_EDGE_CHARS = 40

_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Token:
    term: str
    start: int  # span in the NFC form of the text
    end: int


def fold(word: str) -> str:
    """Case-fold and strip diacritics: the form a word is indexed and looked up under."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> Iterator[Token]:
    """The terms of `text` (already NFC) with their spans, in order."""
    for match in _WORD.finditer(text):
        # Folding can split a word (a fraction folds to digits around a slash): every
        # piece is a term with the same span.
        for piece in _WORD.findall(fold(match.group())):
            if len(piece) <= TERM_MAX_CHARS:
                yield Token(piece, match.start(), match.end())


def terms(text: str) -> list[str]:
    """The terms of `text`, in order, repeats kept: what the engines index and what a
    query looks for. Folds the whole text at once (the hot path of indexing)."""
    folded = text.lower() if text.isascii() else fold(unicodedata.normalize("NFC", text))
    return [term for term in _WORD.findall(folded) if len(term) <= TERM_MAX_CHARS]


@dataclass(frozen=True)
class Analyzed:
    """A document as the index sees it: the terms of its title, then of its body."""

    title: list[str]
    body: list[str]

    @classmethod
    def of(cls, title: str, body: str) -> Analyzed:
        title_terms = terms(title)[:POSITION_MAX]
        body_terms = terms(body)[: max(0, POSITION_MAX - len(title_terms))]
        distinct = dict.fromkeys([*title_terms, *body_terms])
        if len(distinct) > DOCUMENT_TERMS_MAX:
            kept = set(list(distinct)[:DOCUMENT_TERMS_MAX])
            title_terms = [t for t in title_terms if t in kept]
            body_terms = [t for t in body_terms if t in kept]
        return cls(title_terms, body_terms)

    @property
    def distinct(self) -> set[str]:
        return {*self.title, *self.body}


def typo_budget(term: str) -> int:
    """Edits a query word may be away from an indexed term: none for 1 to 3 letters,
    one for 4 to 7, two from 8 (short words have too many neighbours to guess)."""
    if len(term) >= 8:
        return 2
    if len(term) >= 4:
        return 1
    return 0


def snippet(body: str, matches: Callable[[str], bool]) -> str:
    """About `SNIPPET_WORDS` words of `body` around its densest run of matching terms.

    The result is HTML-escaped text whose only markup is `<mark>…</mark>` around the
    words that matched; without a match, it is the body's first words.
    """
    text = unicodedata.normalize("NFC", body[:SNIPPET_SCAN_CHARS])
    found = list(tokens(text))
    if not found:
        return ""
    hits = [i for i, token in enumerate(found) if matches(token.term)]
    first = _best_window(hits, len(found)) if hits else 0
    last = min(len(found), first + SNIPPET_WORDS) - 1
    marked = set(hits)
    parts = ["…" if first > 0 else ""]
    # Around the words, keep some of the text between them (punctuation, markup).
    cursor = found[first].start if first > 0 else max(0, found[0].start - _EDGE_CHARS)
    for i in range(first, last + 1):
        token = found[i]
        if token.start < cursor:  # pieces of one folded word share its span
            continue
        parts.append(html.escape(text[cursor : token.start]))
        word = html.escape(text[token.start : token.end])
        parts.append(f"{MARK_OPEN}{word}{MARK_CLOSE}" if i in marked else word)
        cursor = token.end
    if last < len(found) - 1 or len(body) > SNIPPET_SCAN_CHARS:
        parts.append("…")
    else:
        parts.append(html.escape(text[cursor : cursor + _EDGE_CHARS]))
    return "".join(parts).strip()


def _best_window(hits: list[int], count: int) -> int:
    """The first token of the window of `SNIPPET_WORDS` tokens holding the most hits,
    starting a few words before its first hit so the match is read in context."""
    best_start, best_count, left = hits[0], 0, 0
    for right, position in enumerate(hits):
        while position - hits[left] >= SNIPPET_WORDS:
            left += 1
        if right - left + 1 > best_count:
            best_count, best_start = right - left + 1, hits[left]
    lead = min(4, best_start)
    return max(0, min(best_start - lead, count - SNIPPET_WORDS))
