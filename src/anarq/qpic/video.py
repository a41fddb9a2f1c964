"""Videos: what they are (ffprobe), a poster frame and a small proxy (ffmpeg).

ffmpeg is optional. Without it a video is still recognised by its container's magic
bytes and stored; it just has no poster, thumbnails or proxy, and says why. ffmpeg runs
as an argument list (never a shell), with a timeout, on files in the node's spool folder
that the caller removes afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anarq.kernel.errors import AnarqError

PROBE_TIMEOUT_SECONDS = 30
POSTER_TIMEOUT_SECONDS = 60
# A proxy is transcoded while the import waits: allowed 60 s plus 4 s per second of video,
# at most an hour.
PROXY_BASE_SECONDS = 60
PROXY_SECONDS_PER_SECOND = 4
PROXY_MAX_SECONDS = 3600
PROXY_HEIGHT = 480
POSTER_LONGEST = 1920
NO_FFMPEG = "ffmpeg is not installed on this node"
_MP4_BRANDS_NOT_VIDEO = {b"heic", b"heix", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"}


class VideoFailed(AnarqError):
    code = "qpic.video_unreadable"
    status = 415
    title = "Not a video ffmpeg can read"


@dataclass(frozen=True)
class VideoFacts:
    media_type: str
    width: int | None
    height: int | None
    duration_ms: int | None
    taken_at: datetime | None  # UTC
    offset_minutes: int | None
    camera_make: str | None
    camera_model: str | None
    has_gps: bool


def tools() -> tuple[str, str] | None:
    """Paths of ffmpeg and ffprobe when both are installed."""
    ffmpeg, ffprobe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    return (ffmpeg, ffprobe) if ffmpeg and ffprobe else None


def sniff(path: Path) -> str | None:
    """The media type of a video container from its first bytes, or None."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _MP4_BRANDS_NOT_VIDEO:
            return None
        return "video/quicktime" if brand == b"qt  " else "video/mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if path.suffix.lower() == ".webm" else "video/x-matroska"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "video/x-msvideo"
    return None


def probe(path: Path, media_type: str) -> VideoFacts:
    """Dimensions (as displayed, rotation applied), duration and capture metadata."""
    found = tools()
    assert found is not None, "probe() needs ffmpeg; check tools() first"
    result = _run(
        [
            found[1],
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            str(path),
        ],
        PROBE_TIMEOUT_SECONDS,
    )
    try:
        info: dict[str, Any] = json.loads(result.stdout or b"{}")
    except ValueError:
        raise VideoFailed("ffprobe gave no readable description") from None
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    if not streams:
        raise VideoFailed("the file has no video stream")
    video = streams[0]
    width, height = _int(video.get("width")), _int(video.get("height"))
    if _rotation(video) in (90, 270) and width and height:
        width, height = height, width
    form = info.get("format", {})
    tags = {str(k).lower(): str(v) for k, v in (form.get("tags") or {}).items()}
    duration = _float(form.get("duration")) or _float(video.get("duration"))
    taken, offset = _creation(tags)
    return VideoFacts(
        media_type=media_type,
        width=width,
        height=height,
        duration_ms=round(duration * 1000) if duration else None,
        taken_at=taken,
        offset_minutes=offset,
        camera_make=_tag(tags, "com.apple.quicktime.make", "make"),
        camera_model=_tag(tags, "com.apple.quicktime.model", "model"),
        has_gps=any(
            key in tags
            for key in ("location", "location-eng", "com.apple.quicktime.location.iso6709")
        ),
    )


def poster(source: Path, target: Path, duration_ms: int | None) -> None:
    """A JPEG of one frame (a second in, or the middle of a shorter clip), oriented."""
    found = tools()
    assert found is not None
    at = min(1.0, (duration_ms or 0) / 2000)
    scale = f"scale='min({POSTER_LONGEST},iw)':'min({POSTER_LONGEST},ih)'"
    scale += ":force_original_aspect_ratio=decrease"
    _run(
        [
            found[0],
            "-nostdin",
            "-v",
            "error",
            "-ss",
            f"{at:.3f}",
            "-i",
            str(source),
            "-frames:v",
            "1",
            "-vf",
            scale,
            "-map_metadata",
            "-1",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            "-q:v",
            "3",
            "-y",
            str(target),
        ],
        POSTER_TIMEOUT_SECONDS,
    )
    if not target.exists() or target.stat().st_size == 0:
        raise VideoFailed("ffmpeg found no frame to make a poster from")


def proxy(source: Path, target: Path, duration_ms: int | None) -> None:
    """A 480p H.264/AAC MP4 for playing anywhere, without the original's metadata."""
    found = tools()
    assert found is not None
    seconds = (duration_ms or 0) / 1000
    timeout = min(PROXY_MAX_SECONDS, PROXY_BASE_SECONDS + PROXY_SECONDS_PER_SECOND * seconds)
    _run(
        [
            found[0],
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-vf",
            f"scale=-2:'min({PROXY_HEIGHT},ih)'",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "28",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "96k",
            "-map_metadata",
            "-1",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            "-y",
            str(target),
        ],
        timeout,
    )
    if not target.exists() or target.stat().st_size == 0:
        raise VideoFailed("ffmpeg made no proxy")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    try:
        result = subprocess.run(  # noqa: S603 (an argument list of our own, no shell)
            args, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise VideoFailed(f"{Path(args[0]).name} took longer than {timeout:.0f} s") from None
    if result.returncode != 0:
        # The first line of ffmpeg's complaint names the problem, never the content.
        message = result.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VideoFailed(f"{Path(args[0]).name} failed: {message[-1][:200] if message else ''}")
    return result


def _tag(tags: dict[str, str], *keys: str) -> str | None:
    for key in keys:
        value = tags.get(key, "").strip()
        if value:
            return value[:100]
    return None


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(float(side["rotation"])) % 360
    rotate = (stream.get("tags") or {}).get("rotate")
    return int(rotate) % 360 if rotate and str(rotate).lstrip("-").isdigit() else 0


def _creation(tags: dict[str, str]) -> tuple[datetime | None, int | None]:
    """Apple's local creation date (with its offset) first, then the container's UTC one."""
    for key in ("com.apple.quicktime.creationdate", "creation_time"):
        raw = tags.get(key)
        if not raw:
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            continue
        if moment.year < 1971:  # a zeroed header: no date at all
            continue
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC), None
        offset = moment.utcoffset() or timedelta(0)
        minutes = int(offset.total_seconds() // 60) if key != "creation_time" else None
        return moment.astimezone(UTC), minutes
    return None, None
