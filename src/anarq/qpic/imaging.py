"""Reading images: what they are, when they were taken, thumbnails and a perceptual hash.

Pure functions over bytes and files; nothing here touches the database or storage.
Decoding is restricted to the formats QpiC accepts, never to everything Pillow can read,
so an upload cannot reach a rarely used decoder. Each image is checked against
`MAX_PIXELS` from its header before a single pixel is decoded (decompression bombs),
and JPEGs are decoded at a reduced scale (`Image.draft`: the DCT is scaled by 1/2, 1/4
or 1/8 while decoding) to the smallest size that still covers the largest thumbnail.
"""

from __future__ import annotations

import io
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

from PIL import Image, ImageOps

from anarq.kernel.errors import AnarqError
from anarq.qpic.dupes import to_signed

# Pillow's format names → the media type QpiC records. HEIF is pillow-heif's opener.
MEDIA_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}
ACCEPTED_FORMATS = tuple(MEDIA_TYPES)
THUMB_SIZES = (256, 1024)
THUMB_MEDIA_TYPE = "image/webp"
THUMB_QUALITY = 80
# libwebp's effort (0-6): 2 encodes a 1024 px thumbnail about 3x faster than the default 4
# for a file within a few per cent of its size (see docs/benchmarks.md).
THUMB_WEBP_METHOD = 2
# 120 megapixels: above any camera a person carries (a 100 MP medium-format back is 11,648 x
# 8,736), far below what would exhaust memory (an RGB decode costs 3 bytes a pixel).
MAX_PIXELS = 120_000_000
# Pillow's own guard, as a second line behind the header check in `_open`: it warns above
# this and refuses (DecompressionBombError) above twice this, whatever opens the file.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
SHARE_JPEG_QUALITY = 90
TEXT_MAX = 100

_TAG_MAKE, _TAG_MODEL, _TAG_ORIENTATION = 0x010F, 0x0110, 0x0112
_IFD_EXIF, _IFD_GPS = 0x8769, 0x8825
_TAG_DATETIME_ORIGINAL, _TAG_OFFSET_ORIGINAL = 0x9003, 0x9011
_GPS_LATITUDE, _GPS_LONGITUDE = 2, 4
_EXIF_TIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^([+-])(\d{2}):(\d{2})$")
_heif_registered = threading.Lock()
_heif_ready = False


class NotAnImage(AnarqError):
    code = "qpic.not_an_image"
    status = 415
    title = "Not an image QpiC can read"


class TooManyPixels(AnarqError):
    code = "qpic.too_many_pixels"
    status = 413
    title = "Image has too many pixels"


@dataclass(frozen=True)
class ImageFacts:
    """What an image says about itself. Width and height are as displayed (after the
    EXIF orientation); `taken_local` is the wall-clock time of capture and
    `offset_minutes` its UTC offset when the camera recorded one."""

    format: str
    media_type: str
    width: int
    height: int
    taken_local: datetime | None
    offset_minutes: int | None
    camera_make: str | None
    camera_model: str | None
    has_gps: bool


@dataclass(frozen=True)
class Rendition:
    facts: ImageFacts
    thumbs: dict[int, bytes]  # longest side → WebP bytes
    phash: int  # signed 64-bit, as stored


def _register_heif() -> None:
    global _heif_ready
    with _heif_registered:
        if not _heif_ready:
            from pillow_heif import register_heif_opener

            register_heif_opener()
            _heif_ready = True


def _open(source: Path | IO[bytes]) -> Image.Image:
    _register_heif()
    try:
        image = Image.open(source, formats=ACCEPTED_FORMATS)
    except Image.DecompressionBombError:
        raise TooManyPixels(f"an image may have at most {MAX_PIXELS:,} pixels") from None
    except Exception:  # any decoder failure on untrusted bytes means "not an image"
        raise NotAnImage(
            f"not a JPEG, PNG, WebP, GIF, HEIC or AVIF image ({_accepted_list()})"
        ) from None
    width, height = image.size
    if width < 1 or height < 1:
        raise NotAnImage("the image has no pixels")
    if width * height > MAX_PIXELS:
        image.close()
        raise TooManyPixels(
            f"the image is {width} x {height} = {width * height:,} pixels; "
            f"at most {MAX_PIXELS:,} are accepted"
        )
    return image


def _accepted_list() -> str:
    return "accepted: " + ", ".join(sorted(MEDIA_TYPES.values()))


def sniff(source: Path | IO[bytes]) -> str | None:
    """The image format of a file if QpiC accepts it (header only), else None."""
    try:
        with _open(source) as image:
            return str(image.format)
    except NotAnImage:
        return None


def render(source: Path | IO[bytes]) -> Rendition:
    """Facts, both thumbnails (WebP, EXIF orientation applied) and the pHash of an image.

    Raises `NotAnImage` for anything that does not decode, `TooManyPixels` for bombs.
    """
    with _open(source) as image:
        try:
            facts = _facts(image)
            oriented = _decode_for(image, max(THUMB_SIZES))
        except AnarqError:
            raise
        except Image.DecompressionBombError:
            raise TooManyPixels(f"an image may have at most {MAX_PIXELS:,} pixels") from None
        except Exception:  # truncated or corrupt data found while decoding
            raise NotAnImage("the image data is damaged and does not decode") from None
    thumbs: dict[int, bytes] = {}
    current = oriented
    for size in sorted(THUMB_SIZES, reverse=True):
        current = _fit(current, size)
        thumbs[size] = _webp(current)
    return Rendition(facts=facts, thumbs=thumbs, phash=phash(current))


def _decode_for(image: Image.Image, longest: int) -> Image.Image:
    """Decode just enough pixels for a `longest`-side thumbnail, oriented, in RGB(A)."""
    width, height = image.size
    if image.format == "JPEG" and max(width, height) > longest:
        scale = longest / max(width, height)
        image.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
    image.load()
    oriented = ImageOps.exif_transpose(image)
    return _plain_mode(oriented)


def _plain_mode(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit and float greyscale: scale to 8 bits (convert() would clip at 255).
        image = image.convert("I").point(lambda v: v / 256).convert("L")
    return image.convert("RGBA" if has_alpha else "RGB")


def _fit(image: Image.Image, longest: int) -> Image.Image:
    width, height = image.size
    if max(width, height) <= longest:
        return image
    scale = longest / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _webp(image: Image.Image) -> bytes:
    clean = image.copy()
    clean.info = {}  # no EXIF, XMP or ICC rides along into a thumbnail
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=THUMB_QUALITY, method=THUMB_WEBP_METHOD)
    return out.getvalue()


def phash(image: Image.Image) -> int:
    """The 64-bit DCT perceptual hash (imagehash's pHash), as a signed integer."""
    import imagehash

    value = int(str(imagehash.phash(image, hash_size=8)), 16)
    return to_signed(value)


# Metadata --------------------------------------------------------------------------------


def _facts(image: Image.Image) -> ImageFacts:
    fmt = str(image.format)
    exif = image.getexif()
    width, height = image.size
    if exif.get(_TAG_ORIENTATION) in (5, 6, 7, 8):
        width, height = height, width
    taken_local, offset = _taken(exif)
    return ImageFacts(
        format=fmt,
        media_type=MEDIA_TYPES[fmt],
        width=width,
        height=height,
        taken_local=taken_local,
        offset_minutes=offset,
        camera_make=_text(exif.get(_TAG_MAKE)),
        camera_model=_text(exif.get(_TAG_MODEL)),
        has_gps=_has_gps(image, exif),
    )


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = "".join(c for c in value.replace("\x00", "") if c.isprintable()).strip()
    return cleaned[:TEXT_MAX] or None


def _taken(exif: Image.Exif) -> tuple[datetime | None, int | None]:
    details = exif.get_ifd(_IFD_EXIF)
    raw = _text(details.get(_TAG_DATETIME_ORIGINAL))
    match = _EXIF_TIME.match(raw or "")
    if match is None:
        return None, None
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        local = datetime(year, month, day, hour, minute, second)  # wall time: no zone yet
    except ValueError:
        return None, None  # "0000:00:00 00:00:00" and other placeholders
    if not 1900 <= local.year <= 2200:
        return None, None
    offset_match = _EXIF_OFFSET.match(_text(details.get(_TAG_OFFSET_ORIGINAL)) or "")
    if offset_match is None:
        return local, None
    sign, hours, minutes = offset_match.groups()
    total = int(hours) * 60 + int(minutes)
    if total > 14 * 60:
        return local, None
    return local, -total if sign == "-" else total


def _has_gps(image: Image.Image, exif: Image.Exif) -> bool:
    gps = exif.get_ifd(_IFD_GPS)
    if _GPS_LATITUDE in gps or _GPS_LONGITUDE in gps:
        return True
    xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or b""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    return b"GPSLatitude" in xmp or b"GPSLongitude" in xmp


def capture_time(facts: ImageFacts, fallback: datetime) -> tuple[datetime, int | None, bool]:
    """(UTC instant, offset minutes, from EXIF?) — the upload time when EXIF has none.

    A capture time without an offset is read as UTC: its day and order stay those the
    camera showed, which is what a timeline groups by.
    """
    if facts.taken_local is None:
        return fallback, None, False
    offset = facts.offset_minutes or 0
    zone = timezone(timedelta(minutes=offset))
    return facts.taken_local.replace(tzinfo=zone).astimezone(UTC), facts.offset_minutes, True


# Sharing ---------------------------------------------------------------------------------


def strip_for_share(data: bytes) -> bytes:
    """A copy of an image that is safe to hand to someone else: orientation applied, then
    re-encoded without EXIF (camera, time, GPS), XMP, ICC profile or comments.

    JPEG, PNG, WebP and GIF keep their format; HEIC and AVIF become JPEG (what every
    viewer opens). Sharing uses it for HEIC and AVIF, which Qmask does not read, before
    the owner's Qmask profile is applied.
    """
    with _open(io.BytesIO(data)) as image:
        fmt = str(image.format)
        image.load()
        oriented = ImageOps.exif_transpose(image)
    clean = oriented.copy()
    clean.info = {}
    out = io.BytesIO()
    if fmt == "PNG":
        clean.save(out, "PNG", optimize=False)
    elif fmt == "WEBP":
        clean.save(out, "WEBP", quality=SHARE_JPEG_QUALITY)
    elif fmt == "GIF":
        clean.save(out, "GIF")
    else:
        if clean.mode not in ("RGB", "L"):
            clean = _plain_mode(clean).convert("RGB")
        clean.save(out, "JPEG", quality=SHARE_JPEG_QUALITY)
    return out.getvalue()


def media_type_of(data: bytes) -> str:
    with _open(io.BytesIO(data)) as image:
        return MEDIA_TYPES[str(image.format)]
