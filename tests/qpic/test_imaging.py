"""Image reading without a node: formats, the share copy, bombs."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from anarq.qpic import imaging
from tests.qpic.images import encode, exif, jpeg, scene


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "HEIF", "AVIF"])
def test_strip_for_share_removes_every_trace(fmt: str) -> None:
    metadata = exif(orientation=6, taken="2024:01:02 03:04:05", camera=("Sony", "A7"), gps=True)
    data = encode(
        scene(2, (900, 600)),
        fmt,
        metadata,
        **({"icc_profile": b"\0" * 128} if fmt == "JPEG" else {}),
    )
    clean = imaging.strip_for_share(data)
    copy = Image.open(io.BytesIO(clean))
    assert copy.format == {"HEIF": "JPEG", "AVIF": "JPEG"}.get(fmt, fmt)
    assert not copy.getexif() and "icc_profile" not in copy.info and "xmp" not in copy.info
    assert b"Sony" not in clean
    # Orientation applied to the pixels, then forgotten. (pillow-heif moves an EXIF
    # orientation into the HEIF container when it writes one, and applies it on reading.)
    assert copy.size == ((900, 600) if fmt == "HEIF" else (600, 900))


def test_jpeg_thumbnails_come_from_a_reduced_decode() -> None:
    rendition = imaging.render(io.BytesIO(jpeg(1, (4000, 3000))))
    assert {size: Image.open(io.BytesIO(t)).size for size, t in rendition.thumbs.items()} == {
        256: (256, 192),
        1024: (1024, 768),
    }


def test_small_images_are_not_enlarged() -> None:
    rendition = imaging.render(io.BytesIO(jpeg(1, (300, 200))))
    assert Image.open(io.BytesIO(rendition.thumbs[1024])).size == (300, 200)
    assert Image.open(io.BytesIO(rendition.thumbs[256])).size == (256, 171)


def test_other_formats_pillow_knows_are_still_refused() -> None:
    bmp = encode(scene(1, (64, 64)), "BMP")
    with pytest.raises(imaging.NotAnImage):
        imaging.render(io.BytesIO(bmp))


def test_placeholder_dates_fall_back_to_the_upload_time() -> None:
    facts = imaging.render(io.BytesIO(jpeg(1, (64, 64), taken="0000:00:00 00:00:00"))).facts
    assert facts.taken_local is None
