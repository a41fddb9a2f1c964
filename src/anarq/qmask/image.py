"""Strip an image's metadata (EXIF with GPS, XMP, IPTC, comments, text, ICC if asked).

The image is decoded and written anew with Pillow, so nothing of the original container
survives but the pixels (and, unless asked otherwise, the colour profile, which only says
how to show the colours). The EXIF orientation is applied to the pixels first: a photo
taken sideways still shows upright once its EXIF is gone.

What re-encoding costs: PNG and GIF are lossless; lossless WebP stays lossless; JPEG is
written again with the original's quantisation tables and chroma subsampling, so it
looks the same but is not bit-identical (a lossless JPEG rotation needs jpegtran); lossy
WebP is written at quality 90.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, ImageSequence, JpegImagePlugin, UnidentifiedImageError

from anarq.kernel.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

MEDIA_TYPES: Final = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
}
MAX_PIXELS: Final = 64_000_000
MAX_FRAMES: Final = 1000
WEBP_LOSSY_QUALITY: Final = 90
_ORIENTATION_TAG: Final = 0x0112
_GPS_IFD: Final = 0x8825
_XMP_NAMESPACE: Final = b"http://ns.adobe.com/xap/1.0/"
# Image-info keys that describe pixels or animation, never their author or place.
_KEEP_INFO: Final = frozenset({"transparency", "duration", "loop", "background", "disposal"})


class NotAnImage(UnsupportedMediaType):
    code = "qmask.not_an_image"
    title = "Not an image this node can strip"


class ImageInvalid(BadRequest):
    code = "qmask.image_invalid"
    title = "The image could not be decoded"


class ImageTooLarge(PayloadTooLarge):
    code = "qmask.image_too_large"
    title = "The image has too many pixels"


@dataclass(frozen=True)
class StrippedImage:
    data: bytes
    media_type: str
    format: str
    width: int
    height: int
    frames: int
    # What the original carried and the result does not: exif, gps, xmp, iptc, comment,
    # text, icc, and `jpeg:APPn` for other application segments.
    removed: tuple[str, ...]
    # The EXIF orientation (2-8) turned into pixels; None when the image was upright.
    orientation: int | None


def strip_image(data: bytes, *, keep_icc: bool = True) -> StrippedImage:
    """`data` (JPEG, PNG, WebP or GIF) without its metadata, upright."""
    try:
        source = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise NotAnImage(f"not a {', '.join(MEDIA_TYPES)} image") from None
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"images are limited to {MAX_PIXELS} pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageInvalid(f"the image could not be read: {exc}") from None
    with source:
        if source.format not in MEDIA_TYPES:
            raise NotAnImage(f"{source.format} images are not supported")
        if source.width * source.height > MAX_PIXELS:
            raise ImageTooLarge(f"images are limited to {MAX_PIXELS} pixels")
        frames = getattr(source, "n_frames", 1)
        if frames > MAX_FRAMES:
            raise ImageTooLarge(f"animations are limited to {MAX_FRAMES} frames")
        try:
            return _strip(source, data, keep_icc=keep_icc)
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
            raise ImageInvalid(f"the image could not be decoded: {exc}") from None


def _strip(source: Image.Image, data: bytes, *, keep_icc: bool) -> StrippedImage:
    fmt = str(source.format)
    found = metadata_of(source)
    exif = source.getexif()
    orientation = exif.get(_ORIENTATION_TAG)
    turned = orientation if orientation in range(2, 9) else None
    icc = source.info.get("icc_profile") if keep_icc else None
    frames = [_clean(frame, turned, icc) for frame in ImageSequence.Iterator(source)]
    out = io.BytesIO()
    first, rest = frames[0], frames[1:]
    params: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        assert isinstance(source, JpegImagePlugin.JpegImageFile)
        params["qtables"] = source.quantization
        sampling = JpegImagePlugin.get_sampling(source)
        if sampling != -1:
            params["subsampling"] = sampling
        if source.info.get("progressive"):
            params["progressive"] = True
        first.save(out, "JPEG", **params)
    elif fmt == "WEBP":
        lossless = _webp_is_lossless(data)
        params.update(lossless=lossless, quality=100 if lossless else WEBP_LOSSY_QUALITY)
        _save_frames(out, "WEBP", first, rest, params)
    else:
        _save_frames(out, fmt, first, rest, params)
    removed = [name for name in found if not (name == "icc" and keep_icc)]
    return StrippedImage(
        data=out.getvalue(),
        media_type=MEDIA_TYPES[fmt],
        format=fmt,
        width=first.width,
        height=first.height,
        frames=len(frames),
        removed=tuple(removed),
        orientation=turned,
    )


def _clean(frame: Image.Image, orientation: int | None, icc: bytes | None) -> Image.Image:
    """A copy of `frame`, upright, whose info holds nothing but how to show the pixels."""
    info: dict[str | tuple[int, int], Any] = {
        k: v for k, v in frame.info.items() if k in _KEEP_INFO
    }
    copy = frame.copy()
    if orientation is not None:
        copy = copy.transpose(_TRANSPOSE[orientation])
    copy.info = info
    if icc:
        copy.info["icc_profile"] = icc
    return copy


# The same table as Pillow's `ImageOps.exif_transpose`, applied to every frame.
_TRANSPOSE: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _save_frames(
    out: io.BytesIO, fmt: str, first: Image.Image, rest: list[Image.Image], params: dict[str, Any]
) -> None:
    if rest:
        durations = [frame.info.get("duration", 100) for frame in (first, *rest)]
        params = {**params, "save_all": True, "append_images": rest, "duration": durations}
        if "loop" in first.info:
            params["loop"] = first.info["loop"]
    first.save(out, fmt, **params)


def _webp_is_lossless(data: bytes) -> bool:
    """Whether a WebP file's image chunk is VP8L (lossless), walking the RIFF chunks."""
    at = 12
    while at + 8 <= len(data):
        fourcc, size = data[at : at + 4], struct.unpack("<I", data[at + 4 : at + 8])[0]
        if fourcc in (b"VP8L", b"VP8 "):
            return fourcc == b"VP8L"
        if fourcc == b"ANMF":
            at += 8 + 16  # an animation frame: its header, then its own image chunk
            continue
        at += 8 + size + (size & 1)
    return False


def metadata_of(image: Image.Image) -> list[str]:
    """The kinds of metadata `image` carries, in a fixed order."""
    found: set[str] = set()
    info = image.info
    exif = image.getexif()
    if len(exif) or info.get("exif"):
        found.add("exif")
        if _GPS_IFD in exif and exif.get_ifd(_GPS_IFD):
            found.add("gps")
    if info.get("xmp") or "XML:com.adobe.xmp" in info:
        found.add("xmp")
    if info.get("photoshop") or info.get("iptc"):
        found.add("iptc")
    if info.get("comment"):
        found.add("comment")
    if info.get("icc_profile"):
        found.add("icc")
    text = getattr(image, "text", None) if image.format == "PNG" else None
    if text and any(key != "XML:com.adobe.xmp" for key in text):
        found.add("text")
    for marker, payload in getattr(image, "applist", []):
        if marker == "APP1" and payload.startswith(_XMP_NAMESPACE):
            found.add("xmp")
        elif marker == "APP13":
            found.add("iptc")
        elif marker == "COM":
            found.add("comment")
        elif marker not in ("APP0", "APP1", "APP2", "APP14") or (
            marker == "APP2" and not payload.startswith(b"ICC_PROFILE")
        ):
            found.add(f"jpeg:{marker}")
    order = ["exif", "gps", "xmp", "iptc", "comment", "text", "icc"]
    return [name for name in order if name in found] + sorted(found - set(order))
