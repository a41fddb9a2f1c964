"""Qindex: full-text search over what each caller may read, and mutable pointers.

Documents are projections of other modules' state, keyed by the resource they describe
(`qdrive:file:<id>`): Qindex indexes Qdrive's files from its events, and other modules
call `index_document` / `remove_document` inside their own transactions. Indexing is an
upsert, so a repeated event never makes a second document. A search runs the query's
terms (each unknown word widened to near terms, the last word also matched as a
prefix) through the backend's full-text engine and keeps only what the caller may read:
their own documents and those a Qonsent grant lets them read.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from types import SimpleNamespace
from typing import Any, Final, Literal

import numpy as np
from sqlalchemy import ColumnElement, Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from anarq.kernel import Kernel
from anarq.kernel.bus import Event
from anarq.kernel.db import insert_ignore
from anarq.kernel.errors import AnarqError, BadRequest, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.subject import ExportItem, json_item
from anarq.qdrive.models import FileInfo
from anarq.qdrive.service import DriveService, file_resource
from anarq.qindex import analysis, tables
from anarq.qindex.access import Reach
from anarq.qindex.analysis import Analyzed
from anarq.qindex.fulltext import WordMatch, full_text_for
from anarq.qindex.models import (
    QUERY_MAX_CHARS,
    DocumentIn,
    SearchHit,
    SearchResults,
    SemanticStatus,
)
from anarq.qindex.pointers import Pointers
from anarq.qindex.semantic import (
    EMBED_BATCH,
    MIN_SIMILARITY,
    MODEL,
    Embedder,
    SemanticOff,
    VectorIndex,
    passage,
    require_installed,
    to_bytes,
)
from anarq.qindex.vocabulary import Vocabulary
from anarq.qonsent.service import QonsentService

log = logging.getLogger(__name__)

QUERY_WORDS_MAX = 10
# A last word this short matches exactly only: a one-letter prefix matches nearly everything.
PREFIX_MIN_CHARS = 2
SEARCH_LIMIT_MAX = 50
INDEX_BATCH_MAX = 1000
# File contents indexed: the first this-many bytes of a text file.
FILE_CONTENT_MAX_BYTES = 1024 * 1024
TEXT_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/ld+json",
        "application/xml",
        "application/yaml",
        "application/x-yaml",
        "application/toml",
        "application/javascript",
        "application/x-sh",
        "application/sql",
        "application/csv",
    }
)

# Hybrid search fuses the best this-many of each ranking (Reciprocal Rank Fusion,
# Cormack et al. 2009, with their constant k = 60).
HYBRID_DEPTH: Final = 100
RRF_K: Final = 60
# How often the embedder looks for documents without a vector, when it found none.
EMBED_IDLE_SECONDS: Final = 2.0

SearchMode = Literal["text", "semantic", "hybrid"]

_d = tables.documents
_v = tables.vectors


@dataclass(frozen=True)
class SearchQuery:
    q: str
    module: str | None = None
    type: str | None = None
    owner: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 10
    cursor: str | None = None
    mode: SearchMode = "text"

    def digest(self) -> str:
        """Ties a cursor to the search that gave it."""
        fields = [self.q, self.module, self.type, self.owner, self.since, self.until, self.mode]
        return hashlib.sha256(repr(fields).encode()).hexdigest()[:16]


def is_text(media_type: str) -> bool:
    """Media types whose bytes are text worth indexing."""
    return (
        media_type.startswith("text/")
        or media_type in TEXT_MEDIA_TYPES
        or media_type.endswith(("+json", "+xml"))
    )


class QindexService:
    erase_order = 20

    def __init__(self, kernel: Kernel, qonsent: QonsentService, qdrive: DriveService) -> None:
        self.k = kernel
        self.qonsent = qonsent
        self.qdrive = qdrive
        self.pointers = Pointers(kernel, qonsent)
        self.full_text = full_text_for(kernel.db.dialect)
        self.vocabulary = Vocabulary(kernel.db)
        self.semantic_on = kernel.settings.semantic_search
        if self.semantic_on:
            require_installed()
        self.embedder = Embedder()
        self.vectors = VectorIndex()

    def policy(self, ctx: Context, action: str, resource: str) -> bool:
        """The guard policy: an identity acts freely in its own pointer namespace."""
        return self.pointers.policy(ctx, action, resource)

    # Indexing (for other modules, inside their transactions) -------------------------

    def index_document(self, tx: Connection, document: DocumentIn) -> None:
        """Add or replace the document of `document.resource`, in the caller's transaction.

        Call it in the transaction of the change the document reflects (already
        authorized and audited there). Indexing the same document twice changes nothing.
        """
        self.index_documents(tx, [document])

    def index_documents(self, tx: Connection, documents: Sequence[DocumentIn]) -> None:
        """`index_document` for up to `INDEX_BATCH_MAX` documents at once (the fast path)."""
        assert len(documents) <= INDEX_BATCH_MAX, "index at most INDEX_BATCH_MAX at once"
        latest = {document.resource: document for document in documents}
        if not latest:
            return
        old = tx.execute(
            select(_d.c.seq, _d.c.resource, _d.c.title, _d.c.body).where(
                _d.c.resource.in_(sorted(latest))
            )
        ).all()
        deltas: dict[str, int] = {}
        for row in old:
            _tally(deltas, Analyzed.of(row.title, row.body), -1)
        analyzed = {r: Analyzed.of(doc.title, doc.text) for r, doc in latest.items()}
        for doc in analyzed.values():
            _tally(deltas, doc, +1)
        # Written with the engine's columns (PostgreSQL's vectors), so each row once.
        written = self.full_text.documents
        now = self.k.clock.now()
        seqs = {row.resource: row.seq for row in old}
        fresh = [
            {**_row(doc, now), **self.full_text.columns(analyzed[resource])}
            for resource, doc in latest.items()
            if resource not in seqs
        ]
        if fresh:
            inserted = tx.execute(
                insert(written).returning(written.c.seq, written.c.resource), fresh
            )
            seqs.update({row.resource: row.seq for row in inserted})
        if old:
            replaced = [
                {
                    **_row(latest[row.resource], now),
                    **self.full_text.columns(analyzed[row.resource]),
                    "b_seq": row.seq,
                }
                for row in old
            ]
            tx.execute(
                update(written)
                .where(written.c.seq == bindparam("b_seq"))
                .values({name: bindparam(name) for name in replaced[0] if name != "b_seq"}),
                replaced,
            )
            self.full_text.delete(tx, [row.seq for row in old])
            # A new text needs a new vector: the embedder finds the document pending.
            tx.execute(delete(_v).where(_v.c.seq.in_([row.seq for row in old])))
        self.full_text.write(tx, [(seqs[r], doc) for r, doc in analyzed.items()])
        self.vocabulary.count(tx, {t: n for t, n in deltas.items() if n})

    def remove_document(self, tx: Connection, resource: str) -> bool:
        """Drop the document of `resource`, in the caller's transaction; False if none."""
        row = tx.execute(
            select(_d.c.seq, _d.c.title, _d.c.body).where(_d.c.resource == resource)
        ).first()
        if row is None:
            return False
        self.full_text.delete(tx, [row.seq])
        tx.execute(delete(_v).where(_v.c.seq == row.seq))
        tx.execute(delete(_d).where(_d.c.seq == row.seq))
        deltas: dict[str, int] = {}
        _tally(deltas, Analyzed.of(row.title, row.body), -1)
        self.vocabulary.count(tx, deltas)
        return True

    # Semantic search: vectors ---------------------------------------------------------

    def embed_pending(self, limit: int = 4 * EMBED_BATCH) -> int:
        """Embed up to `limit` documents that have no vector yet; how many were stored.

        The model runs outside any transaction. A document changed or removed meanwhile
        keeps no vector from its old text: the write checks it is still as it was read.
        """
        if not self.semantic_on:
            raise SemanticOff()
        with self.k.db.read() as conn:
            pending = conn.execute(
                select(_d.c.seq, _d.c.title, _d.c.body, _d.c.indexed_at)
                .outerjoin(_v, (_v.c.seq == _d.c.seq) & (_v.c.model == MODEL))
                .where(_v.c.id.is_(None))
                .order_by(_d.c.seq)
                .limit(limit)
            ).all()
        if not pending:
            return 0
        embedded = self.embedder.embed([passage(row.title, row.body) for row in pending])
        now = self.k.clock.now()
        stored = 0
        with self.k.db.write() as tx:
            current = dict(
                tx.execute(
                    select(_d.c.seq, _d.c.indexed_at).where(
                        _d.c.seq.in_([row.seq for row in pending])
                    )
                ).all()
            )
            for row, vector in zip(pending, embedded, strict=True):
                if current.get(row.seq) != row.indexed_at:
                    continue
                values = {"seq": row.seq, "model": MODEL, "vector": to_bytes(vector)}
                stored += insert_ignore(tx, _v, {**values, "created_at": now})
        return stored

    def semantic_status(self, ctx: Context) -> SemanticStatus:
        """On or off, and the model; for the operator, how far the embedder has got."""
        if ctx.actor.kind not in ("operator", "node"):
            return SemanticStatus(enabled=self.semantic_on, model=MODEL)
        with self.k.db.read() as conn:
            documents = conn.execute(select(func.count()).select_from(_d)).scalar_one()
            embedded = conn.execute(
                select(func.count()).select_from(_v).where(_v.c.model == MODEL)
            ).scalar_one()
        return SemanticStatus(
            enabled=self.semantic_on,
            model=MODEL,
            documents=documents,
            embedded=embedded,
            pending=max(0, documents - embedded) if self.semantic_on else 0,
        )

    async def run_embedder(self, stop: asyncio.Event) -> None:
        """Background task, when semantic search is on: embed documents as they come."""
        if not self.semantic_on:
            return
        while not stop.is_set():
            try:
                if await asyncio.to_thread(self.embed_pending) > 0:
                    continue
            except Exception:
                log.exception("embedding documents failed; retrying")
            try:
                await asyncio.wait_for(stop.wait(), EMBED_IDLE_SECONDS)
            except TimeoutError:
                continue

    # Data-subject requests -----------------------------------------------------------

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """The person's pointers with their history, and what the index holds of theirs."""
        p, v, t = tables.pointers, tables.pointer_versions, tables.pointer_tags
        with self.k.db.read() as conn:
            pointers = [
                {
                    **dict(row),
                    "tags": list(
                        conn.execute(
                            select(t.c.tag).where(t.c.owner == did, t.c.key == row["key"])
                        ).scalars()
                    ),
                    "history": [
                        dict(x)
                        for x in conn.execute(
                            select(v)
                            .where(v.c.owner == did, v.c.key == row["key"])
                            .order_by(v.c.version)
                        ).mappings()
                    ],
                }
                for row in conn.execute(select(p).where(p.c.owner == did).order_by(p.c.key))
                .mappings()
                .all()
            ]
            documents = [
                dict(row)
                for row in conn.execute(
                    select(_d.c.resource, _d.c.module, _d.c.type, _d.c.title, _d.c.updated_at)
                    .where(_d.c.owner == did)
                    .order_by(_d.c.resource)
                ).mappings()
            ]
        yield json_item("pointers.json", pointers)
        yield json_item("indexed-documents.json", documents)

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Delete the person's pointers (with history) and their documents in the index."""
        p, v, t = tables.pointers, tables.pointer_versions, tables.pointer_tags
        with self.k.change(ctx, "delete", f"qindex:subject:{did}") as tx:
            resources = list(tx.execute(select(_d.c.resource).where(_d.c.owner == did)).scalars())
            for resource in resources:
                self.remove_document(tx, resource)
            tx.execute(delete(t).where(t.c.owner == did))
            tx.execute(delete(v).where(v.c.owner == did))
            pointers = tx.execute(delete(p).where(p.c.owner == did)).rowcount
        return {"pointers": pointers, "documents": len(resources)}

    # Qdrive events -------------------------------------------------------------------

    def on_file_stored(self, tx: Connection, event: Event) -> None:
        """Index a stored, moved, trashed or restored file as it is now: path, media type,
        owner, and the text of text-like files (unless the operator turned contents off);
        a file in the trash leaves the index until it is restored."""
        file_id = str(event.data.get("file_id", ""))
        ctx = Context.system()
        try:
            info = self.qdrive.file(ctx, file_id)
        except NotFound:  # purged before this delivery: its deletion event follows
            self.remove_document(tx, file_resource(file_id))
            return
        if info.trashed_at is not None:  # the trash is not searched
            self.remove_document(tx, file_resource(file_id))
            return
        self.index_document(
            tx,
            DocumentIn(
                resource=file_resource(file_id),
                module="qdrive",
                type="file",
                owner=info.owner,
                title=info.path,
                text=self._file_text(tx, ctx, info),
                meta={
                    "path": info.path,
                    "media_type": info.media_type,
                    "size": info.size,
                    "version": info.version,
                    "visibility": info.visibility,
                },
                updated_at=info.updated_at,
            ),
        )

    # Each its own subscription (one per handler method), all doing the same: look again.
    def on_file_moved(self, tx: Connection, event: Event) -> None:
        self.on_file_stored(tx, event)

    def on_file_trashed(self, tx: Connection, event: Event) -> None:
        self.on_file_stored(tx, event)

    def on_file_restored(self, tx: Connection, event: Event) -> None:
        self.on_file_stored(tx, event)

    def on_file_deleted(self, tx: Connection, event: Event) -> None:
        """A purged file leaves the index."""
        self.remove_document(tx, file_resource(str(event.data.get("file_id", ""))))

    def _file_text(self, tx: Connection, ctx: Context, info: FileInfo) -> str:
        if not self.k.settings.index_file_contents or not is_text(info.media_type):
            return ""
        try:
            # The node's read is audited, in this handler's transaction.
            opened = self.qdrive.open(ctx, info.id, audit_tx=tx)
            content = bytearray()
            for chunk in opened.chunks:
                content += chunk[: FILE_CONTENT_MAX_BYTES - len(content)]
                if len(content) >= FILE_CONTENT_MAX_BYTES:
                    break
        except AnarqError as exc:
            log.warning("file %s indexed without its content: %s", info.id, exc.code)
            return ""
        if b"\x00" in content:  # binary after all
            return ""
        return content.decode("utf-8", errors="replace")

    # Searching -----------------------------------------------------------------------

    def search(self, ctx: Context, query: SearchQuery) -> SearchResults:
        """Ranked documents matching every word of `query.q` that the caller may read.

        Nobody finds what they may not read: the owner finds their own documents,
        others what a Qonsent grant of `read` covers; the operator finds everything.
        """
        words = _words(query.q)
        assert 1 <= query.limit <= SEARCH_LIMIT_MAX
        if query.since and query.until and query.since > query.until:
            raise BadRequest("since is after until")
        if query.mode != "text" and not self.semantic_on:
            raise SemanticOff()
        after = _decode_cursor(query.cursor, query.digest()) if query.cursor else None
        reach = Reach.of(ctx, self.qonsent, "read", self.k.clock.now())
        # The query's vector first: the model runs outside the read transaction.
        meaning = self.embedder.embed([query.q])[0] if query.mode != "text" else None
        with self.k.db.read() as conn:
            matches = self._word_matches(conn, words)
            if meaning is None:
                rows = conn.execute(self._ranked(query, matches, reach, after)).all()
            else:
                if query.mode == "semantic":
                    chosen = self._semantic_ranking(
                        conn, query, reach, meaning, after, query.limit + 1
                    )
                else:
                    fused = _fused(
                        self._semantic_ranking(conn, query, reach, meaning, None, HYBRID_DEPTH),
                        self._text_ranking(conn, query, matches, reach),
                    )
                    chosen = _page_of(fused, after, query.limit + 1)
                rows = self._rows_of(conn, chosen)
        page = rows[: query.limit]
        matcher = _Matcher(matches)
        hits = [
            SearchHit(
                resource=row.resource,
                module=row.module,
                type=row.type,
                owner=row.owner,
                title=row.title,
                snippet=analysis.snippet(row.excerpt or row.title, matcher),
                score=round(float(row.score), 6),
                updated_at=row.updated_at,
                meta=dict(row.meta),
            )
            for row in page
        ]
        next_cursor = None
        if len(rows) > query.limit:
            last = page[-1]
            next_cursor = _encode_cursor(float(last.score), int(last.seq), query.digest())
        return SearchResults(query=query.q, hits=hits, next_cursor=next_cursor)

    def _word_matches(self, conn: Connection, words: list[str]) -> list[WordMatch]:
        """Each word with its near terms when no document holds it as typed; the last
        word also as a prefix."""
        known = self.vocabulary.known(conn, words)
        matches = []
        for position, word in enumerate(words):
            exact = [word]
            if word not in known:
                exact += self.vocabulary.near(conn, word, analysis.typo_budget(word))
            last = position == len(words) - 1
            prefix = word if last and len(word) >= PREFIX_MIN_CHARS else None
            matches.append(WordMatch(tuple(exact), prefix))
        return matches

    def _semantic_ranking(
        self,
        conn: Connection,
        query: SearchQuery,
        reach: Reach,
        meaning: np.ndarray[Any, Any],
        after: tuple[float, int] | None,
        size: int,
    ) -> list[tuple[float, int]]:
        """The next `size` readable, embedded documents at least `MIN_SIMILARITY` close to
        the query (after the cursor's), as (cosine similarity, seq), best first."""
        self.vectors.catch_up(conn)
        readable = conn.execute(
            select(_d.c.seq, _v.c.id)
            .join(_v, (_v.c.seq == _d.c.seq) & (_v.c.model == MODEL))
            .where(*_filters(query, reach))
        ).all()
        seqs, similarity = self.vectors.scores(meaning, [(row.seq, row.id) for row in readable])
        found = np.asarray(seqs, dtype=np.int64)
        scores = similarity.astype(np.float64)
        keep = scores >= MIN_SIMILARITY
        if after is not None:
            score, seq = after
            keep &= (scores < score) | ((scores == score) & (found > seq))
        found, scores = found[keep], scores[keep]
        if len(scores) > size:
            # The best `size` without sorting them all; every tie of the last one stays,
            # so that the order by (score, seq) below is the true one.
            cut = np.partition(scores, len(scores) - size)[len(scores) - size]
            found, scores = found[scores >= cut], scores[scores >= cut]
        order = np.lexsort((found, -scores))[:size]
        return [(float(scores[i]), int(found[i])) for i in order]

    def _text_ranking(
        self, conn: Connection, query: SearchQuery, matches: list[WordMatch], reach: Reach
    ) -> list[tuple[float, int]]:
        """The best `HYBRID_DEPTH` full-text matches, as (score, seq), best first."""
        deep = replace(query, limit=HYBRID_DEPTH - 1, cursor=None)
        rows = conn.execute(self._ranked(deep, matches, reach, None)).all()
        return [(float(row.score), int(row.seq)) for row in rows]

    def _rows_of(self, conn: Connection, page: list[tuple[float, int]]) -> list[Any]:
        """The page's documents, in the page's order, each with its score."""
        if not page:
            return []
        score_of = {seq: score for score, seq in page}
        rows = conn.execute(select(*_HIT_COLUMNS).where(_d.c.seq.in_(list(score_of)))).mappings()
        by_seq = {row["seq"]: {**row, "score": score_of[row["seq"]]} for row in rows}
        return [SimpleNamespace(**by_seq[seq]) for _, seq in page if seq in by_seq]

    def _ranked(
        self,
        query: SearchQuery,
        matches: list[WordMatch],
        reach: Reach,
        after: tuple[float, int] | None,
    ) -> Select[Any]:
        """One page (plus one row, to know if more follow) of readable matches, best first.

        Ranking comes first; the bodies are read for the page's rows only.
        """
        scored = self.full_text.ranked(matches, _filters(query, reach)).subquery("scored")
        page = select(scored.c.seq, scored.c.score)
        if after is not None:
            score, seq = after
            page = page.where(
                (scored.c.score < score) | ((scored.c.score == score) & (scored.c.seq > seq))
            )
        paged = (
            page.order_by(scored.c.score.desc(), scored.c.seq)
            .limit(query.limit + 1)
            .subquery("paged")
        )
        return (
            select(paged.c.score, *_HIT_COLUMNS)
            .join(_d, _d.c.seq == paged.c.seq)
            .order_by(paged.c.score.desc(), paged.c.seq)
        )


# What a hit shows of its document (its score comes from the ranking).
_HIT_COLUMNS = (
    _d.c.seq,
    _d.c.resource,
    _d.c.module,
    _d.c.type,
    _d.c.owner,
    _d.c.title,
    func.substr(_d.c.body, 1, analysis.SNIPPET_SCAN_CHARS).label("excerpt"),
    _d.c.meta,
    _d.c.updated_at,
)


def _filters(query: SearchQuery, reach: Reach) -> list[ColumnElement[bool]]:
    """What the caller may read, narrowed by the query's filters."""
    filters = [reach.where(_d.c.resource, _d.c.owner)]
    if query.module:
        filters.append(_d.c.module == query.module)
    if query.type:
        filters.append(_d.c.type == query.type)
    if query.owner:
        filters.append(_d.c.owner == query.owner)
    if query.since:
        filters.append(_d.c.updated_at >= query.since)
    if query.until:
        filters.append(_d.c.updated_at <= query.until)
    return filters


def _fused(*rankings: list[tuple[float, int]]) -> list[tuple[float, int]]:
    """Reciprocal Rank Fusion of the top `HYBRID_DEPTH` of each ranking, best first."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (_, seq) in enumerate(ranking[:HYBRID_DEPTH], start=1):
            fused[seq] = fused.get(seq, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(((score, seq) for seq, score in fused.items()), key=lambda h: (-h[0], h[1]))


def _page_of(
    ranking: list[tuple[float, int]], after: tuple[float, int] | None, size: int
) -> list[tuple[float, int]]:
    """The next `size` of a (score, seq) ranking, best first, after the cursor's hit."""
    if after is not None:
        score, seq = after
        ranking = [hit for hit in ranking if hit[0] < score or (hit[0] == score and hit[1] > seq)]
    return ranking[:size]


class _Matcher:
    """Whether a body term matched one of the query's words (for snippets)."""

    def __init__(self, matches: list[WordMatch]) -> None:
        self.exact = {term for match in matches for term in match.exact}
        self.prefixes = tuple(match.prefix for match in matches if match.prefix)

    def __call__(self, term: str) -> bool:
        return term in self.exact or term.startswith(self.prefixes)


def _words(q: str) -> list[str]:
    if len(q) > QUERY_MAX_CHARS:
        raise BadRequest(f"a query is at most {QUERY_MAX_CHARS} characters")
    words = list(dict.fromkeys(analysis.terms(q)))
    if not words:
        raise BadRequest("the query has no words to search for (letters or digits)")
    if len(words) > QUERY_WORDS_MAX:
        raise BadRequest(f"a query has at most {QUERY_WORDS_MAX} different words")
    return words


def _row(document: DocumentIn, now: datetime) -> dict[str, Any]:
    return {
        "resource": document.resource,
        "module": document.module,
        "type": document.type,
        "owner": document.owner,
        "title": document.title,
        "body": document.text,
        "meta": dict(document.meta),
        "updated_at": document.updated_at,
        "indexed_at": now,
    }


def _tally(deltas: dict[str, int], doc: Analyzed, sign: int) -> None:
    for term in doc.distinct:
        deltas[term] = deltas.get(term, 0) + sign


def _encode_cursor(score: float, seq: int, digest: str) -> str:
    raw = json.dumps([score.hex(), seq, digest], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, digest: str) -> tuple[float, int]:
    """The (score, seq) after which the next page starts; refuses foreign cursors."""
    refused = BadRequest("cursor is not one this search gave; start again without it")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score_hex, seq, tied_to = json.loads(raw)
        score = float.fromhex(score_hex)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise refused from None
    if tied_to != digest or not isinstance(seq, int) or isinstance(seq, bool):
        raise refused
    return score, seq
