"""Videos: a poster frame, thumbnails and a 480p proxy through ffmpeg; without ffmpeg,
the original is kept and the photo says why it has no poster."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from anarq.kernel.node import Node
from tests.qpic.conftest import Photographer
from tests.qpic.images import tiny_video

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None

# In CI ffmpeg is installed by .ci/run, so these tests must run there.
requires_ffmpeg = pytest.mark.skipif(
    not HAVE_FFMPEG and not IN_CI,
    reason="ffmpeg is not installed (apt-get install ffmpeg); CI installs it and runs these",
)


@pytest.fixture
def clip(tmp_path: Path) -> bytes:
    if not HAVE_FFMPEG and not IN_CI:
        pytest.skip("ffmpeg is not installed; the test video is made with ffmpeg")
    return tiny_video(tmp_path / "clip.mp4").read_bytes()


@requires_ffmpeg
async def test_video_gets_poster_thumbnails_and_proxy(
    node: Node, alice: Photographer, clip: bytes, tmp_path: Path
) -> None:
    photo = await alice.upload("clip.mp4", clip)
    assert photo["kind"] == "video" and photo["media_type"] == "video/mp4"
    assert (photo["width"], photo["height"]) == (320, 240)
    assert 1900 <= photo["duration_ms"] <= 2100
    assert photo["poster"] is True and photo["proxy"] is True and photo["video_note"] is None
    assert photo["taken_at"] == "2023-07-14T10:20:30Z" and photo["taken_source"] == "video"
    assert photo["thumbs"] == [256, 1024] and photo["phash"] is not None

    poster = await alice.send("GET", f"/qpic/photos/{photo['id']}/poster")
    assert poster.status_code == 200 and poster.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(poster.content)).size == (320, 240)
    small = await alice.send("GET", f"/qpic/photos/{photo['id']}/thumb", params={"size": 256})
    assert Image.open(io.BytesIO(small.content)).size == (256, 192)
    proxy = await alice.send("GET", f"/qpic/photos/{photo['id']}/proxy")
    assert proxy.status_code == 200 and proxy.headers["content-type"] == "video/mp4"
    assert proxy.content[4:8] == b"ftyp" and b"creation_time" not in proxy.content
    original = await alice.send("GET", f"/qpic/photos/{photo['id']}/content")
    assert original.content == clip
    # ffmpeg worked on spool files that are gone once the import is over.
    assert not list((node.kernel.settings.data_dir / "spool").glob("qpic-*"))


@requires_ffmpeg
async def test_without_ffmpeg_the_original_is_kept_and_the_reason_given(
    alice: Photographer, clip: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))  # ffmpeg is not on the PATH
    photo = await alice.upload("clip.mp4", clip)
    assert photo["kind"] == "video" and photo["poster"] is None and photo["thumbs"] == []
    assert "ffmpeg" in photo["video_note"]
    thumb = await alice.send("GET", f"/qpic/photos/{photo['id']}/thumb")
    assert thumb.status_code == 404 and "ffmpeg" in thumb.json()["detail"]
    original = await alice.send("GET", f"/qpic/photos/{photo['id']}/content")
    assert original.content == clip
