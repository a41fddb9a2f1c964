"""Qlock ops/s: sign, verify, seal and open, classical and hybrid, next to raw `cryptography`.

    python -m benchmarks.qlock_ops [--seconds 0.5] [--rounds 5] [--payload 1024] [--cluster]

One payload of `--payload` bytes (1 KiB), one recipient. Each Qlock call is measured next
to the `cryptography` call(s) it is built on, in the same run:

- sign / verify, classical: Ed25519 `sign` / `verify` of the message.
- sign / verify, hybrid: Ed25519 and ML-DSA-65 over the bound message, both (and ML-DSA-65
  alone, for reference).
- seal / open: HPKE single-shot `Suite.encrypt` / `decrypt` of the whole payload to the
  same key (DHKEM(X25519) classical, X-Wing hybrid; HKDF-SHA256, ChaCha20-Poly1305). A
  Qlock envelope adds a random data key, HKDF, a payload AEAD and a header MAC around it.

Every measurement runs `--seconds` and is repeated `--rounds` times, the Qlock call and
its yardstick alternating, so noise from other work falls on both; the median is kept.
Qlock touches no database: `--cluster` is accepted so that every benchmark takes the same
flags, and changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import cryptography
from cryptography.hazmat.primitives import hpke

from anarq.qlock import AgreementKey, SigningKey, open_sealed, seal, sign, verify
from anarq.qlock.sign import HEADER_BYTES, HYBRID_PREFIX

ED = HEADER_BYTES + 64  # where the Ed25519 half of a wire signature ends


def ops_per_second(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of `call`, run in blocks for about `seconds`."""
    block = 1
    while True:  # size a block to ~10 ms so the clock is read rarely
        started = time.perf_counter()
        for _ in range(block):
            call()
        if time.perf_counter() - started > 0.01:
            break
        block *= 2
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(block):
            call()
        calls += block
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def pairs(payload: bytes) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """Operation name -> (the Qlock call, the raw `cryptography` call(s) under it)."""
    classical = SigningKey.generate(hybrid=False)
    hybrid = SigningKey.generate(hybrid=True)
    bound = HYBRID_PREFIX + payload
    classical_sig = sign(classical, payload)
    hybrid_sig = sign(hybrid, payload)
    raw_ed_sig = classical._ed25519.sign(payload)
    raw_hybrid_ed = hybrid._ed25519.sign(bound)
    assert hybrid._mldsa65 is not None
    mldsa_key = hybrid._mldsa65
    raw_hybrid_pq = mldsa_key.sign(bound)
    ed_public = classical.verify_key._ed25519
    hybrid_ed_public = hybrid.verify_key._ed25519
    mldsa_public = mldsa_key.public_key()

    x_reader = AgreementKey.generate(hybrid=False)
    xwing_reader = AgreementKey.generate(hybrid=True)
    x_suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
    xwing_suite = hpke.Suite(
        hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305
    )
    x_public, xwing_public = x_reader.recipient_key._hpke, xwing_reader.recipient_key._hpke
    x_envelope = seal(payload, [x_reader.recipient_key])
    xwing_envelope = seal(payload, [xwing_reader.recipient_key])
    x_raw = x_suite.encrypt(payload, x_public)
    xwing_raw = xwing_suite.encrypt(payload, xwing_public)
    assert open_sealed(x_envelope, x_reader) == payload
    assert open_sealed(xwing_envelope, xwing_reader) == payload
    assert x_suite.decrypt(x_raw, x_reader._hpke) == payload
    assert xwing_suite.decrypt(xwing_raw, xwing_reader._hpke) == payload

    def raw_hybrid_verify() -> None:
        hybrid_ed_public.verify(raw_hybrid_ed, bound)
        mldsa_public.verify(raw_hybrid_pq, bound)

    return {
        "sign/classical": (
            lambda: sign(classical, payload),
            lambda: classical._ed25519.sign(payload),
        ),
        "verify/classical": (
            lambda: verify(classical.verify_key, payload, classical_sig),
            lambda: ed_public.verify(raw_ed_sig, payload),
        ),
        "sign/hybrid": (
            lambda: sign(hybrid, payload),
            lambda: (hybrid._ed25519.sign(bound), mldsa_key.sign(bound)),
        ),
        "verify/hybrid": (
            lambda: verify(hybrid.verify_key, payload, hybrid_sig),
            raw_hybrid_verify,
        ),
        "seal/classical": (
            lambda: seal(payload, [x_reader.recipient_key]),
            lambda: x_suite.encrypt(payload, x_public),
        ),
        "open/classical": (
            lambda: open_sealed(x_envelope, x_reader),
            lambda: x_suite.decrypt(x_raw, x_reader._hpke),
        ),
        "seal/hybrid": (
            lambda: seal(payload, [xwing_reader.recipient_key]),
            lambda: xwing_suite.encrypt(payload, xwing_public),
        ),
        "open/hybrid": (
            lambda: open_sealed(xwing_envelope, xwing_reader),
            lambda: xwing_suite.decrypt(xwing_raw, xwing_reader._hpke),
        ),
        # References only: the PQ half alone.
        "sign/mldsa65_only": (lambda: mldsa_key.sign(bound), lambda: mldsa_key.sign(bound)),
        "verify/mldsa65_only": (
            lambda: mldsa_public.verify(raw_hybrid_pq, bound),
            lambda: mldsa_public.verify(raw_hybrid_pq, bound),
        ),
    }


RAW_NAMES = {
    "sign/classical": "Ed25519 sign",
    "verify/classical": "Ed25519 verify",
    "sign/hybrid": "Ed25519 sign + ML-DSA-65 sign",
    "verify/hybrid": "Ed25519 verify + ML-DSA-65 verify",
    "seal/classical": "HPKE X25519 single-shot encrypt",
    "open/classical": "HPKE X25519 single-shot decrypt",
    "seal/hybrid": "HPKE X-Wing single-shot encrypt",
    "open/hybrid": "HPKE X-Wing single-shot decrypt",
}


def run(seconds: float, rounds: int, payload_bytes: int, cluster: bool = False) -> dict[str, Any]:
    payload = os.urandom(payload_bytes)
    operations = pairs(payload)
    results: dict[str, Any] = {
        "benchmark": "qlock_ops",
        "payload_bytes": payload_bytes,
        "recipients": 1,
        "seconds_per_measurement": seconds,
        "rounds": rounds,
        "cpus": os.cpu_count(),
        "cryptography": cryptography.__version__,
        "openssl": _openssl_version(),
        "python": platform.python_version(),
        "backend": "none (pure computation; --cluster changes nothing)" if cluster else "none",
        "operations": {},
    }
    for name, (qlock_call, raw_call) in operations.items():
        if name.endswith("_only"):
            per_round = [ops_per_second(qlock_call, seconds) for _ in range(rounds)]
            results["references"] = results.get("references", {})
            results["references"][name] = {"ops_per_second": round(statistics.median(per_round))}
            continue
        qlock_rates, raw_rates = [], []
        for _ in range(rounds):
            qlock_rates.append(ops_per_second(qlock_call, seconds))
            raw_rates.append(ops_per_second(raw_call, seconds))
        qlock_rate, raw_rate = statistics.median(qlock_rates), statistics.median(raw_rates)
        results["operations"][name] = {
            "qlock_ops_per_second": round(qlock_rate),
            "raw": RAW_NAMES[name],
            "raw_ops_per_second": round(raw_rate),
            "qlock_over_raw": round(qlock_rate / raw_rate, 3),
            "qlock_us": round(1e6 / qlock_rate, 1),
            "raw_us": round(1e6 / raw_rate, 1),
            "overhead_us": round(1e6 / qlock_rate - 1e6 / raw_rate, 1),
        }
    return results


def _openssl_version() -> str:
    from cryptography.hazmat.backends.openssl.backend import backend

    return str(backend.openssl_version_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--payload", type=int, default=1024)
    parser.add_argument(
        "--cluster", action="store_true", help="Accepted for uniformity; Qlock has no backend."
    )
    args = parser.parse_args()
    print(json.dumps(run(args.seconds, args.rounds, args.payload, args.cluster), indent=2))


if __name__ == "__main__":
    main()
