"""How the CLI cuts a file into upload parts and prepares the next one while one is sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from anarq.qdrive.cli import _digested, _one_ahead, _parts
from anarq.squid.httpsig import content_digest


def test_whole_parts_pass_uncopied() -> None:
    pieces = [b"a" * 8, b"b" * 8, b"c" * 3]
    parts = list(_parts(iter(pieces), 8))
    assert parts == pieces
    assert parts[0] is pieces[0] and parts[1] is pieces[1]


def test_uneven_pieces_are_recut_into_parts() -> None:
    pieces = [b"ab", b"cdefg", b"hijklmnop", b"q"]
    assert list(_parts(iter(pieces), 4)) == [b"abcd", b"efgh", b"ijkl", b"mnop", b"q"]


def test_each_part_carries_its_content_digest() -> None:
    [(data, digest)] = list(_digested(iter([b"part"])))
    assert data == b"part" and digest == content_digest(b"part")
    assert digest.startswith("sha-256=:")


def test_parts_made_ahead_keep_their_order() -> None:
    assert list(_one_ahead(iter(range(100)))) == list(range(100))


def test_the_next_part_is_made_on_another_thread() -> None:
    makers: list[str] = []

    def made() -> Iterator[int]:
        for n in range(3):
            makers.append(threading.current_thread().name)
            yield n

    assert list(_one_ahead(made())) == [0, 1, 2]
    assert all(name.startswith("qdrive-part") for name in makers)


def test_an_error_making_a_part_reaches_the_sender() -> None:
    def broken() -> Iterator[int]:
        yield 1
        raise OSError("disk gone")

    sent = []
    with pytest.raises(OSError, match="disk gone"):
        for item in _one_ahead(broken()):
            sent.append(item)
    assert sent == [1]
