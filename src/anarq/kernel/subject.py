"""What a module offers for data-subject requests: export what it holds about a person, erase it.

A module's service implements `SubjectData` (duck-typed) to take part in
`anarq privacy export|erase`. Items are streamed, so a drive of any size exports in
constant memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from anarq.kernel.guard import Context


@dataclass(frozen=True)
class ExportItem:
    """One file of an export archive: a path inside it and its bytes, in pieces."""

    name: str
    chunks: Iterable[bytes]


@runtime_checkable
class SubjectData(Protocol):
    # Erasures run in ascending order: modules that others' erasure relies on (the
    # identity itself) go last.
    erase_order: int

    def export_subject(self, ctx: Context, did: str) -> Iterator[ExportItem]:
        """Everything this module holds about `did`."""
        ...

    def erase_subject(self, ctx: Context, did: str) -> dict[str, int]:
        """Erase (or crypto-shred) what this module holds about `did`; counts by kind."""
        ...


def json_item(name: str, value: object) -> ExportItem:
    """A JSON file of the export (datetimes as ISO 8601 text)."""
    import json

    return ExportItem(name, [json.dumps(value, indent=2, default=str).encode()])
