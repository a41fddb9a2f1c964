"""QpiC through the HTTP API, as signed identities: import, thumbnails, reads, deletes."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from anarq.kernel.node import Node
from anarq.kernel.tables import outbox
from anarq.qdrive import tables as drive_tables
from anarq.qpic import tables
from anarq.qpic.service import QpicService
from tests.kernel.test_bus import drain
from tests.qpic.conftest import Photographer
from tests.qpic.images import encode, jpeg, scene


def drive_paths(node: Node) -> list[str]:
    f = drive_tables.files
    with node.kernel.db.read() as conn:
        return sorted(conn.execute(select(f.c.path)).scalars())


def photo_rows(node: Node) -> list[Any]:
    with node.kernel.db.read() as conn:
        return list(conn.execute(select(tables.photos)))


async def thumb(person: Photographer, photo_id: str, size: int = 256) -> Image.Image:
    response = await person.send("GET", f"/qpic/photos/{photo_id}/thumb", params={"size": size})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


FORMATS = [
    ("JPEG", "a.jpg", "image/jpeg"),
    ("PNG", "a.png", "image/png"),
    ("WEBP", "a.webp", "image/webp"),
    ("GIF", "a.gif", "image/gif"),
    ("AVIF", "a.avif", "image/avif"),
    ("HEIF", "a.heic", "image/heic"),
]


@pytest.mark.parametrize(("fmt", "name", "media_type"), FORMATS)
async def test_each_format_imports_with_both_thumbnails(
    node: Node, alice: Photographer, fmt: str, name: str, media_type: str
) -> None:
    data = encode(scene(7), fmt)
    photo = await alice.upload(name, data)
    assert photo["media_type"] == media_type and photo["kind"] == "image"
    assert (photo["width"], photo["height"]) == (1600, 1200)
    assert photo["thumbs"] == [256, 1024] and len(photo["phash"]) == 16
    assert photo["taken_source"] == "upload"
    assert (await thumb(alice, photo["id"], 256)).size == (256, 192)
    assert (await thumb(alice, photo["id"], 1024)).size == (1024, 768)
    original = await alice.send("GET", f"/qpic/photos/{photo['id']}/content")
    assert original.content == data
    # Everything lives in the drive: the original, and the thumbnails in a hidden folder.
    assert drive_paths(node) == sorted(
        [
            f"/Photos/{name}",
            f"/.qpic/thumbs/{photo['id']}-256.webp",
            f"/.qpic/thumbs/{photo['id']}-1024.webp",
        ]
    )


async def test_exif_orientation_is_honoured(alice: Photographer) -> None:
    photo = await alice.upload("turned.jpg", jpeg(3, (1200, 800), orientation=6))
    assert (photo["width"], photo["height"]) == (800, 1200)
    small = await thumb(alice, photo["id"], 256)
    assert small.size == (171, 256)  # portrait, as the camera was held
    assert not small.getexif()  # no metadata rides along in a thumbnail


async def test_capture_metadata_is_read_and_location_is_kept_only_in_the_original(
    node: Node, alice: Photographer
) -> None:
    data = jpeg(
        4, taken="2024:05:06 23:30:00", offset="+02:00", camera=("Canon", "EOS R6"), gps=True
    )
    photo = await alice.upload("paris.jpg", data)
    assert photo["taken_at"] == "2024-05-06T21:30:00Z"
    assert photo["taken_offset"] == "+02:00" and photo["taken_day"] == "2024-05-06"
    assert photo["taken_source"] == "exif"
    assert (photo["camera_make"], photo["camera_model"]) == ("Canon", "EOS R6")
    assert photo["has_gps"] is True
    columns = {c.name for c in tables.photos.columns}
    assert not {"latitude", "longitude", "gps", "location"} & columns
    stored = (await alice.send("GET", f"/qpic/photos/{photo['id']}/content")).content
    assert Image.open(io.BytesIO(stored)).getexif().get_ifd(0x8825)  # the original keeps it
    [row] = photo_rows(node)
    assert row.has_gps is True


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
    )


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"just some text, not a picture", 415, "qpic.not_an_image"),
        (b"\xff\xd8\xff\xe0 truncated jpeg", 415, "qpic.not_an_image"),
        (b"", 415, "qpic.not_an_image"),
        (_png_header_only(30_000, 30_000), 413, "qpic.too_many_pixels"),
    ],
)
async def test_what_is_not_an_image_is_refused_and_nothing_is_stored(
    node: Node, alice: Photographer, data: bytes, status: int, code: str
) -> None:
    response = await alice.send("POST", "/qpic/upload", params={"name": "x.jpg"}, content=data)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert drive_paths(node) == [] and photo_rows(node) == []


async def test_a_stranger_sees_nothing_of_mine(alice: Photographer, bob: Photographer) -> None:
    photo = await alice.upload("private.jpg", jpeg(5))
    for path in ("", "/thumb", "/content"):
        response = await bob.send("GET", f"/qpic/photos/{photo['id']}{path}")
        assert response.status_code == 403, (path, response.text)
    assert (
        await bob.send("GET", "/qpic/photos/01JNOTAPHOTO0000000000000/thumb")
    ).status_code == 404
    assert (await bob.send("GET", "/qpic/photos")).json()["photos"] == []
    assert (await bob.send("DELETE", f"/qpic/photos/{photo['id']}")).status_code == 403
    anonymous = await alice.http.get(f"/qpic/photos/{photo['id']}/thumb")
    assert anonymous.status_code == 401


async def test_a_drive_file_becomes_a_photo_once_and_only_for_its_owner(
    alice: Photographer, bob: Photographer
) -> None:
    stored = await alice.put("/camera/big.jpg", jpeg(6))
    made = await alice.send("POST", "/qpic/photos", json={"file_id": stored["id"]})
    assert made.status_code == 201, made.text
    assert made.json()["file_id"] == stored["id"] and made.json()["thumbs"] == [256, 1024]
    again = await alice.send("POST", "/qpic/photos", json={"file_id": stored["id"]})
    assert again.status_code == 409
    theirs = await bob.send("POST", "/qpic/photos", json={"file_id": stored["id"]})
    assert theirs.status_code == 403
    text = await alice.put("/notes.txt", b"not a photo")
    refused = await alice.send("POST", "/qpic/photos", json={"file_id": text["id"]})
    assert refused.status_code == 415


async def test_name_clashes_keep_both_photos(node: Node, alice: Photographer) -> None:
    first = await alice.upload("IMG_0001.JPG", jpeg(1))
    second = await alice.upload("IMG_0001.JPG", jpeg(2))
    assert first["file_id"] != second["file_id"]
    photos = [p for p in drive_paths(node) if p.startswith("/Photos/")]
    assert len(photos) == 2 and "/Photos/IMG_0001.JPG" in photos


async def test_purged_original_takes_its_photo_and_thumbnails_along(
    node: Node, alice: Photographer, qpic: QpicService
) -> None:
    photo = await alice.upload("gone.jpg", jpeg(8))
    keep = await alice.upload("kept.jpg", jpeg(9))
    purged = await alice.send(
        "DELETE", f"/qdrive/files/{photo['file_id']}", params={"forever": "true"}
    )
    assert purged.status_code == 204
    await drain(node, lambda: len(photo_rows(node)) == 1)
    assert (await alice.send("GET", f"/qpic/photos/{photo['id']}")).status_code == 404
    assert qpic.collect_orphans() == 2
    assert not any(photo["id"] in path for path in drive_paths(node))
    assert any(keep["id"] in path for path in drive_paths(node))
    await drain(node, rounds=3)  # the thumbnails' own deletions reach the handler: no effect
    assert [row.id for row in photo_rows(node)] == [keep["id"]]
    with node.kernel.db.read() as conn:
        types = list(conn.execute(select(outbox.c.type)).scalars())
    assert types.count("qpic.photo.imported") == 2 and types.count("qpic.photo.deleted") == 1


async def test_deleting_a_photo_trashes_the_original(node: Node, alice: Photographer) -> None:
    photo = await alice.upload("old.jpg", jpeg(10))
    deleted = await alice.send("DELETE", f"/qpic/photos/{photo['id']}")
    assert deleted.status_code == 204
    assert photo_rows(node) == []
    assert drive_paths(node) == ["/Photos/old.jpg"]  # only the original, in the trash
    trash = (await alice.send("GET", "/qdrive/files", params={"trash": "true"})).json()
    assert [e["name"] for e in trash["entries"]] == ["Photos/old.jpg"]
