"""QpiC thumbnails for 24-megapixel JPEGs: the import path next to plain Pillow.

    python -m benchmarks.qpic_thumbnails [--images 40]

Makes N synthetic 6000 x 4000 JPEGs (gradients plus noise, so they do not compress to
nothing; EXIF with an orientation and a capture time, a quarter of them turned), then
times `anarq.qpic.imaging.render` on each — what an import runs: header and EXIF, a
reduced-scale decode (`Image.draft`), orientation, the 1024 and 256 px WebP thumbnails
and the pHash. The yardstick, in the same process on the same files: plain Pillow —
`Image.open`, a full decode, `thumbnail()` to 1024 and to 256 px, each saved as WebP
(no draft, no orientation, no pHash). Peak resident memory is read from /proc (VmHWM,
reset before each phase), so the two phases have their own figure.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from PIL import Image

from anarq.qpic import imaging

WIDTH, HEIGHT = 6000, 4000


def make_jpeg(path: Path, seed: int) -> None:
    gradient = Image.linear_gradient("L").rotate(seed * 37 % 360).resize((WIDTH, HEIGHT))
    # Sensor-like noise: enough that the JPEG is a camera's size (about 7 MB), not a flat file.
    noise = Image.effect_noise((WIDTH, HEIGHT), 12 + seed % 6)
    image = Image.merge("RGB", (gradient, noise, Image.blend(gradient, noise, 0.5)))
    exif = Image.Exif()
    exif[0x0112] = 6 if seed % 4 == 0 else 1
    exif.get_ifd(0x8769)[0x9003] = f"2024:06:{1 + seed % 28:02d} 12:00:00"
    image.save(path, "JPEG", quality=90, exif=exif)


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mib(field: str = "VmHWM") -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def service_path(path: Path) -> None:
    rendition = imaging.render(path)
    assert set(rendition.thumbs) == {256, 1024}


def plain_pillow(path: Path) -> None:
    with Image.open(path) as image:
        image.load()  # the full 24 MP decode: draft() has nothing left to reduce
        for size in (1024, 256):
            image.thumbnail((size, size))
            image.save(
                io.BytesIO(),
                "WEBP",
                quality=imaging.THUMB_QUALITY,
                method=imaging.THUMB_WEBP_METHOD,
            )


def timed(files: list[Path], work: Any) -> dict[str, Any]:
    reset_peak()
    before = peak_mib("VmRSS")
    latencies = []
    started = time.perf_counter()
    for path in files:
        begun = time.perf_counter()
        work(path)
        latencies.append(time.perf_counter() - begun)
    total = time.perf_counter() - started
    latencies.sort()
    return {
        "images_per_second": round(len(files) / total, 2),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p95_ms": round(latencies[max(0, round(0.95 * len(latencies)) - 1)] * 1000, 1),
        "peak_rss_mib": peak_mib(),
        "rss_before_mib": before,  # the interpreter, Pillow, imagehash and scipy
    }


def run(images: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="qpic-bench-") as folder:
        files = [Path(folder) / f"{n:03d}.jpg" for n in range(images)]
        for n, path in enumerate(files):
            make_jpeg(path, n)
        average_mib = sum(p.stat().st_size for p in files) / len(files) / 2**20
        service_path(files[0])  # imports (imagehash, scipy) are not part of the figure
        plain_pillow(files[0])
        qpic = timed(files, service_path)
        yardstick = timed(files, plain_pillow)
    return {
        "benchmark": "qpic_thumbnails",
        "images": images,
        "pixels": f"{WIDTH}x{HEIGHT}",
        "average_file_mib": round(average_mib, 2),
        "cpu_count": os.cpu_count(),
        "qpic_render": qpic,
        "plain_pillow_full_decode": yardstick,
        "speedup": round(qpic["images_per_second"] / yardstick["images_per_second"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=40)
    args = parser.parse_args()
    print(json.dumps(run(args.images), indent=2))


if __name__ == "__main__":
    main()
