"""Test pictures made on the spot: distinct scenes, EXIF as cameras write it."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

MAKE, MODEL, ORIENTATION = 0x010F, 0x0110, 0x0112
EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME_ORIGINAL, OFFSET_ORIGINAL = 0x9003, 0x9011


def scene(seed: int, size: tuple[int, int] = (1600, 1200)) -> Image.Image:
    """A picture with large shapes (so a perceptual hash has something to hold on to)."""
    rng = random.Random(seed)
    image = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(image)
    width, height = size
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1, y1 = (
            x0 + rng.randrange(width // 8, width // 2),
            y0 + rng.randrange(height // 8, height // 2),
        )
        colour = tuple(rng.randrange(256) for _ in range(3))
        if rng.random() < 0.5:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        else:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
    return image


def exif(
    *,
    orientation: int | None = None,
    taken: str | None = None,
    offset: str | None = None,
    camera: tuple[str, str] | None = None,
    gps: bool = False,
) -> Image.Exif:
    data = Image.Exif()
    if orientation is not None:
        data[ORIENTATION] = orientation
    if camera is not None:
        data[MAKE], data[MODEL] = camera
    if taken is not None or offset is not None:
        details = data.get_ifd(EXIF_IFD)
        if taken is not None:
            details[DATETIME_ORIGINAL] = taken
        if offset is not None:
            details[OFFSET_ORIGINAL] = offset
    if gps:
        where = data.get_ifd(GPS_IFD)
        where[1], where[2] = "N", (48.0, 51.0, 30.0)
        where[3], where[4] = "E", (2.0, 17.0, 40.0)
    return data


def encode(
    image: Image.Image, fmt: str, metadata: Image.Exif | None = None, **options: object
) -> bytes:
    out = io.BytesIO()
    if fmt == "HEIF":
        from pillow_heif import register_heif_opener

        register_heif_opener()
    if fmt == "GIF":
        image = image.convert("P", palette=Image.Palette.ADAPTIVE)
    if metadata is not None:
        options["exif"] = metadata
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(seed: int = 1, size: tuple[int, int] = (1600, 1200), **fields: object) -> bytes:
    return encode(scene(seed, size), "JPEG", exif(**fields) if fields else None, quality=90)


def tiny_video(path: Path, seconds: int = 2) -> Path:
    """A 320x240 test pattern made by ffmpeg itself."""
    ffmpeg = shutil.which("ffmpeg")
    assert ffmpeg is not None
    subprocess.run(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=duration={seconds}:size=320x240:rate=10",
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-metadata",
            "creation_time=2023-07-14T10:20:30Z",
            "-y",
            str(path),
        ],
        check=True,
        timeout=60,
    )
    return path
