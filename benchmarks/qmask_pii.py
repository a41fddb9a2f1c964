"""Qmask PII detection: quality on the generated corpus, and speed next to yardsticks.

    python -m benchmarks.qmask_pii [--samples 5000] [--seed 2026] [--rounds 3] [--cluster]

Quality: precision, recall and F1 per entity type and overall on `--samples` sentences of
the labelled corpus (`anarq.qmask.pii.corpus`, fixed seed). A found entity counts when it
overlaps a labelled span of the same type.

Speed, on the same sentences, each measured `--rounds` times (median kept), alternating
so that noise falls on all alike:

- `detect`: `pii.detect` (all eleven detectors, phone regions US, GB, DE, FR);
- `redact`: `pii.redact`, mask mode (detect plus the rewrite);
- yardstick `regex_email`: one plain e-mail regex over each text — the floor any
  regex-only scrubber pays;
- yardstick `phonenumbers_one_region`: `phonenumbers.PhoneNumberMatcher` for one region
  over each text, the library our phone detector runs once per region.

Pure CPU, no database: `--cluster` is accepted so every benchmark takes the same flags.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import time
from collections.abc import Callable
from typing import Any

import phonenumbers

from anarq.qmask import pii
from anarq.qmask.pii import corpus

PLAIN_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


def seconds_for(work: Callable[[str], object], texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        work(text)
    return time.perf_counter() - started


def run(
    samples: int = 5000, seed: int = 2026, rounds: int = 3, cluster: bool = False
) -> dict[str, Any]:
    del cluster  # no backend involved
    data = corpus.generate(samples, seed)
    texts = [sample.text for sample in data]
    megabytes = sum(len(t.encode()) for t in texts) / 1e6

    found = [pii.detect(text) for text in texts]
    tallies = corpus.evaluate(data, found)
    quality = {
        kind: {
            "precision": round(t.precision, 4),
            "recall": round(t.recall, 4),
            "f1": round(t.f1, 4),
            "labelled": t.true_positives + t.false_negatives,
            "found": t.true_positives + t.false_positives,
        }
        for kind, t in sorted(tallies.items())
    }

    work: dict[str, Callable[[str], object]] = {
        "detect": pii.detect,
        "redact": pii.redact,
        "regex_email": lambda text: list(PLAIN_EMAIL.finditer(text)),
        "phonenumbers_one_region": lambda text: list(
            phonenumbers.PhoneNumberMatcher(text, "US", leniency=phonenumbers.Leniency.VALID)
        ),
    }
    timings: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(rounds):
        for name, call in work.items():
            timings[name].append(seconds_for(call, texts))
    speed = {}
    for name, runs in timings.items():
        median = statistics.median(runs)
        speed[name] = {
            "texts_per_second": round(len(texts) / median),
            "mb_per_second": round(megabytes / median, 3),
        }
    detect_rate = speed["detect"]["texts_per_second"]
    return {
        "benchmark": "qmask_pii",
        "python": platform.python_version(),
        "phonenumbers": phonenumbers.__version__,
        "samples": samples,
        "seed": seed,
        "rounds": rounds,
        "corpus_megabytes": round(megabytes, 3),
        "labelled_entities": sum(len(s.spans) for s in data),
        "quality": quality,
        "speed": speed,
        "ratios": {
            "detect_over_regex_email": round(
                detect_rate / speed["regex_email"]["texts_per_second"], 5
            ),
            "detect_over_phonenumbers_one_region": round(
                detect_rate / speed["phonenumbers_one_region"]["texts_per_second"], 3
            ),
            "redact_over_detect": round(speed["redact"]["texts_per_second"] / detect_rate, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    print(json.dumps(run(args.samples, args.seed, args.rounds, args.cluster), indent=2))


if __name__ == "__main__":
    main()
