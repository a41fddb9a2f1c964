"""Qindex at scale: indexing throughput and search latency over generated documents.

    python -m benchmarks.qindex_search [--documents 100000] [--queries 400] [--cluster]

Documents are generated text with a Zipf word distribution (s = 1.1) over a vocabulary
of 30,000 made-up words of 2 to 12 letters: a title of 3 to 8 words and a body of 50 to
300 words each, owned by 100 identities. They go in through
`QindexService.index_documents` in write transactions of `--batch` documents (analysis,
vocabulary counts and the full-text index, as any module's indexing does).

Then `--queries` searches run one after another on one thread, as one identity that
owns 1 % of the documents and holds 200 exact grants and one pattern grant on others'
(so the Qonsent filter has work to do), limit 10, through `QindexService.search`:
a quarter each of one word, two words, a prefix (3 to 5 letters of a word), and a word
with one typo (a letter dropped, swapped or replaced). Query words are drawn from
vocabulary ranks 50 to 5,000: words people search for, not "the". Interleaved with
them, the yardstick: the bare engine query for the same (already expanded) terms —
FTS5 MATCH ordered by bm25, or tsvector @@ tsquery ordered by ts_rank_cd, LIMIT 11 —
with no Qonsent filter, no typo lookup, no snippets, no service. On PostgreSQL the
yardstick ranks every match while the service ranks at most 1,000 candidates
(`fulltext.TS_CANDIDATES_MAX`), so there it shows what the candidate cut saves.

Issue goal: p95 < 50 ms at 100,000 documents.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import func, insert, select, text

from anarq.kernel.guard import Actor, Context
from anarq.kernel.ids import new_id
from anarq.kernel.node import Node
from anarq.qindex import analysis, tables
from anarq.qindex.fulltext import fts5_query, tsquery
from anarq.qindex.models import DocumentIn
from anarq.qindex.service import QindexService, SearchQuery
from anarq.qonsent import tables as qonsent_tables
from benchmarks._nodes import database_megabytes, latency_summary, open_node

VOCABULARY = 30_000
ZIPF_S = 1.1
OWNERS = 100
QUERY_RANKS = (50, 5_000)
GRANTS = 200
KINDS = ("one_word", "two_words", "prefix", "typo")
BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


class Corpus:
    """A made-up language: words, their Zipf weights, owners and documents."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words: set[str] = set()
        while len(words) < VOCABULARY:
            words.add(self._word())
        # Short words are the common ones, as in natural language.
        self.words = sorted(words, key=lambda w: (len(w), w))
        self.rng.shuffle(self.words[:200])
        weights = [1 / (rank**ZIPF_S) for rank in range(1, VOCABULARY + 1)]
        self.cumulative = list(accumulate(weights))
        self.owners = [
            "did:key:z6Mk" + "".join(self.rng.choices(BASE58, k=44)) for _ in range(OWNERS)
        ]

    def _word(self) -> str:
        syllables = self.rng.randint(1, 4)
        return "".join(
            self.rng.choice("bcdfghjklmnprstvwz") + self.rng.choice("aeiouy")
            for _ in range(syllables)
        ) + self.rng.choice(["", "", "n", "s", "r", "t"])

    def text(self, count: int) -> str:
        picked = self.rng.choices(self.words, cum_weights=self.cumulative, k=count)
        return " ".join(picked)

    def document(self, n: int, start: datetime) -> DocumentIn:
        title = self.text(self.rng.randint(3, 8)).capitalize()
        return DocumentIn(
            resource=f"qbench:doc:{n}",
            module="qbench",
            type=self.rng.choice(["note", "note", "mail", "page"]),
            owner=self.owners[n % OWNERS],
            title=title,
            text=self.text(self.rng.randint(50, 300)) + ".",
            meta={"n": n},
            updated_at=start + timedelta(seconds=n),
        )

    def query(self, kind: str) -> str:
        low, high = QUERY_RANKS
        word = self.words[self.rng.randint(low, high)]
        if kind == "one_word":
            return word
        if kind == "two_words":
            return f"{self.words[self.rng.randint(low, high)]} {word}"
        if kind == "prefix":
            return word[: self.rng.randint(3, 5)]
        while len(word) < 5:
            word = self.words[self.rng.randint(low, high)]
        return _typo(self.rng, word)


def _typo(rng: random.Random, word: str) -> str:
    at = rng.randrange(1, len(word) - 1)
    kind = rng.choice(["drop", "swap", "replace"])
    if kind == "drop":
        return word[:at] + word[at + 1 :]
    if kind == "swap":
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return word[:at] + rng.choice(string.ascii_lowercase) + word[at + 1 :]


# Indexing ---------------------------------------------------------------------------------


def load(node: Node, corpus: Corpus, documents: int, batch: int) -> dict[str, Any]:
    service: QindexService = node.service("qindex")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    for first in range(0, documents, batch):
        docs = [corpus.document(n, start) for n in range(first, min(documents, first + batch))]
        with node.kernel.db.write() as tx:
            service.index_documents(tx, docs)
    seconds = time.perf_counter() - began
    with node.kernel.db.read() as conn:
        terms = conn.execute(
            select(func.count()).select_from(tables.terms).where(tables.terms.c.docs > 0)
        ).scalar_one()
    return {
        "documents": documents,
        "batch": batch,
        "seconds": round(seconds, 1),
        "docs_per_second": round(documents / seconds),
        "vocabulary_terms": terms,
        "database_mb": database_megabytes(node),
    }


def grant_reads(node: Node, corpus: Corpus, searcher: str, documents: int) -> None:
    """The searcher's grants: exact ones on others' documents, and one pattern."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": new_id(),
            "grantor": corpus.owners[(n % (OWNERS - 1)) + 1],
            "grantee": searcher,
            "resource": resource,
            "actions": "read",
            "purpose": "benchmark",
            "starts_at": now - timedelta(days=1),
            "expires_at": None,
            "max_uses": None,
            "uses": 0,
            "conditions": {},
            "created_at": now,
        }
        for n, resource in enumerate(
            [f"qbench:doc:{corpus.rng.randrange(documents)}" for _ in range(GRANTS)]
            + ["qbench:doc:9*"]
        )
    ]
    with node.kernel.db.write() as tx:
        tx.execute(insert(qonsent_tables.grants), rows)


# Searching --------------------------------------------------------------------------------


def yardstick(node: Node, service: QindexService, q: str) -> tuple[Any, int]:
    """The bare engine query for what `q` expands to; returns the statement and params."""
    with node.kernel.db.read() as conn:
        matches = service._word_matches(conn, list(dict.fromkeys(analysis.terms(q))))
    if node.kernel.db.dialect == "sqlite":
        statement = text(
            "SELECT rowid, bm25(qindex_fts, 10.0, 1.0) AS rank FROM qindex_fts "
            "WHERE qindex_fts MATCH :q ORDER BY rank LIMIT 11"
        ).bindparams(q=fts5_query(matches))
    else:
        statement = text(
            "SELECT seq, ts_rank_cd('{0.1, 0.2, 0.4, 1.0}'::float4[], search_vector, "
            "CAST(:q AS tsquery), 1) AS rank FROM qindex_documents "
            "WHERE search_vector @@ CAST(:q AS tsquery) ORDER BY rank DESC LIMIT 11"
        ).bindparams(q=tsquery(matches))
    with node.kernel.db.read() as conn:
        count_sql = (
            "SELECT count(*) FROM qindex_fts WHERE qindex_fts MATCH :q"
            if node.kernel.db.dialect == "sqlite"
            else "SELECT count(*) FROM qindex_documents WHERE search_vector @@ CAST(:q AS tsquery)"
        )
        matched = conn.execute(text(count_sql), statement.compile().params).scalar_one()
    return statement, int(matched)


def measure(node: Node, corpus: Corpus, queries: int) -> dict[str, Any]:
    service: QindexService = node.service("qindex")
    searcher = corpus.owners[0]
    ctx = Context(actor=Actor(id=searcher, kind="identity"))
    plan = [(KINDS[i % len(KINDS)], corpus.query(KINDS[i % len(KINDS)])) for i in range(queries)]
    prepared = [(kind, q, *yardstick(node, service, q)) for kind, q in plan]
    for _, q, _, _ in prepared[:20]:  # warm caches, the vocabulary's included
        service.search(ctx, SearchQuery(q=q))
    timings: dict[str, list[float]] = {kind: [] for kind in KINDS}
    bare: list[float] = []
    hits: list[int] = []
    for kind, q, statement, _ in prepared:
        began = time.perf_counter()
        result = service.search(ctx, SearchQuery(q=q))
        timings[kind].append(time.perf_counter() - began)
        hits.append(len(result.hits))
        began = time.perf_counter()
        with node.kernel.db.read() as conn:
            conn.execute(statement).all()
        bare.append(time.perf_counter() - began)
    every = [t for kind in KINDS for t in timings[kind]]
    matched = sorted(m for *_, m in prepared)
    service_summary = latency_summary(every, "ms")
    bare_summary = latency_summary(bare, "ms")
    return {
        "queries": queries,
        "search_ms": service_summary,
        "by_kind_p95_ms": {kind: latency_summary(timings[kind], "ms")["p95_ms"] for kind in KINDS},
        "yardstick_bare_engine_ms": bare_summary,
        "ratio_p95": round(service_summary["p95_ms"] / bare_summary["p95_ms"], 2),
        "matching_documents_p50": matched[len(matched) // 2],
        "matching_documents_p95": matched[int(len(matched) * 0.95)],
        "queries_with_hits_for_searcher": sum(1 for h in hits if h),
        "goal_p95_ms": 50,
    }


def run(documents: int, queries: int, batch: int, cluster: bool, seed: int = 7) -> dict[str, Any]:
    results: dict[str, Any] = {
        "benchmark": "qindex_search",
        "vocabulary": VOCABULARY,
        "zipf_s": ZIPF_S,
    }
    for backend in ("embedded", "cluster") if cluster else ("embedded",):
        corpus = Corpus(seed)
        with open_node(backend) as node:
            indexing = load(node, corpus, documents, batch)
            grant_reads(node, corpus, corpus.owners[0], documents)
            results[backend] = {"indexing": indexing, "search": measure(node, corpus, queries)}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="Also run on PostgreSQL + NATS (must be reachable on loopback).",
    )
    args = parser.parse_args()
    print(
        json.dumps(run(args.documents, args.queries, args.batch, args.cluster, args.seed), indent=2)
    )


if __name__ == "__main__":
    main()
