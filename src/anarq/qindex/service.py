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

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from anarq.kernel import Kernel
from anarq.kernel.bus import Event
from anarq.kernel.errors import AnarqError, BadRequest, NotFound
from anarq.kernel.guard import Context
from anarq.kernel.subject import ExportItem, json_item
from anarq.qdrive.models import FileInfo
from anarq.qdrive.service import DriveService, file_resource
from anarq.qindex import analysis, tables
from anarq.qindex.access import Reach
from anarq.qindex.analysis import Analyzed
from anarq.qindex.fulltext import WordMatch, full_text_for
from anarq.qindex.models import QUERY_MAX_CHARS, DocumentIn, SearchHit, SearchResults
from anarq.qindex.pointers import Pointers
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

_d = tables.documents


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

    def digest(self) -> str:
        """Ties a cursor to the search that gave it."""
        fields = [self.q, self.module, self.type, self.owner, self.since, self.until]
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
        now = self.k.clock.now()
        seqs = {row.resource: row.seq for row in old}
        fresh = [_row(doc, now) for resource, doc in latest.items() if resource not in seqs]
        if fresh:
            inserted = tx.execute(insert(_d).returning(_d.c.seq, _d.c.resource), fresh)
            seqs.update({row.resource: row.seq for row in inserted})
        if old:
            replaced = [{**_row(latest[row.resource], now), "b_seq": row.seq} for row in old]
            tx.execute(
                update(_d)
                .where(_d.c.seq == bindparam("b_seq"))
                .values({name: bindparam(name) for name in replaced[0] if name != "b_seq"}),
                replaced,
            )
            self.full_text.delete(tx, [row.seq for row in old])
        analyzed = []
        for resource, document in latest.items():
            doc = Analyzed.of(document.title, document.text)
            _tally(deltas, doc, +1)
            analyzed.append((seqs[resource], doc))
        self.full_text.write(tx, analyzed)
        self.vocabulary.count(tx, {t: n for t, n in deltas.items() if n})

    def remove_document(self, tx: Connection, resource: str) -> bool:
        """Drop the document of `resource`, in the caller's transaction; False if none."""
        row = tx.execute(
            select(_d.c.seq, _d.c.title, _d.c.body).where(_d.c.resource == resource)
        ).first()
        if row is None:
            return False
        self.full_text.delete(tx, [row.seq])
        tx.execute(delete(_d).where(_d.c.seq == row.seq))
        deltas: dict[str, int] = {}
        _tally(deltas, Analyzed.of(row.title, row.body), -1)
        self.vocabulary.count(tx, deltas)
        return True

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
        after = _decode_cursor(query.cursor, query.digest()) if query.cursor else None
        reach = Reach.of(ctx, self.qonsent, "read", self.k.clock.now())
        with self.k.db.read() as conn:
            matches = self._word_matches(conn, words)
            rows = conn.execute(self._ranked(query, matches, reach, after)).all()
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

    def _ranked(
        self,
        query: SearchQuery,
        matches: list[WordMatch],
        reach: Reach,
        after: tuple[float, int] | None,
    ) -> Select[Any]:
        """One page (plus one row, to know if more follow) of readable matches, best first.

        Ranking every match comes first; the bodies are read for the page's rows only.
        """
        ranked = self.full_text.ranked(matches)
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
        scored = ranked.where(*filters).subquery("scored")
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
            select(
                paged.c.seq,
                paged.c.score,
                _d.c.resource,
                _d.c.module,
                _d.c.type,
                _d.c.owner,
                _d.c.title,
                func.substr(_d.c.body, 1, analysis.SNIPPET_SCAN_CHARS).label("excerpt"),
                _d.c.meta,
                _d.c.updated_at,
            )
            .join(_d, _d.c.seq == paged.c.seq)
            .order_by(paged.c.score.desc(), paged.c.seq)
        )


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
