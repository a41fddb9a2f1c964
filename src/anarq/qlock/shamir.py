"""Guardian recovery: split a secret into k-of-n shares and combine any k of them.

The shares are SLIP-39 mnemonics (Trezor's standard: word lists with an RS1024
checksum, a split identifier and the threshold inside every share), computed by the
`shamir-mnemonic` reference implementation; this module only bounds the inputs and
turns the library's refusals into typed errors. One group of `shares`, `threshold` of
which recover the secret; fewer reveal nothing about it (Shamir over GF(256)).

Two properties of SLIP-39 callers must know:
- The passphrase (printable ASCII) encrypts the secret before splitting. A *wrong*
  passphrase yields a different secret, not an error — by design, for deniability.
  Check the result (e.g. that the recovered key has the expected key id).
- Secrets are 16..64 bytes of even length: a 32-byte seed (`AgreementKey` X-Wing or
  X25519, an Ed25519 seed) or two of them. Anything larger: split a key that encrypts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from shamir_mnemonic import (  # type: ignore[import-untyped]
    EncryptedMasterSecret,
    MnemonicError,
    Share,
    generate_mnemonics,
    recover_ems,
)
from shamir_mnemonic.shamir import ShareGroup  # type: ignore[import-untyped]

from anarq.qlock.conditions_errors import (
    BadSplit,
    InconsistentShares,
    MalformedShare,
    TooFewShares,
)
from anarq.qlock.errors import WeakPassphrase

# SLIP-39's limits: at least 128 bits, an even number of bytes, at most 16 shares.
SHAMIR_MIN_SECRET_BYTES: Final = 16
SHAMIR_MAX_SECRET_BYTES: Final = 64
SHAMIR_MAX_SHARES: Final = 16
# A share of a 64-byte secret is 59 words of at most 8 letters; room is left for spacing.
SHAMIR_MAX_SHARE_CHARS: Final = 1000
# PBKDF2 runs 10,000 << e iterations; a hostile share with e = 15 would cost minutes.
# We write e = 1 (the library's and Trezor's default) and read up to this.
SHAMIR_ITERATION_EXPONENT: Final = 1
SHAMIR_MAX_ITERATION_EXPONENT: Final = 5
SHAMIR_MAX_PASSPHRASE_CHARS: Final = 256


def split(secret: bytes, threshold: int, shares: int, *, passphrase: str = "") -> list[str]:
    """`shares` mnemonics, any `threshold` of which give back `secret`.

    Refuses a secret outside 16..64 bytes or of odd length, and counts outside
    1 <= threshold <= shares <= 16 (a threshold of 1 only with a single share, as
    SLIP-39 requires: n copies of the secret are not a secret sharing).
    """
    if not isinstance(secret, bytes):
        raise TypeError(f"the secret is bytes, not {type(secret).__name__}")
    if not SHAMIR_MIN_SECRET_BYTES <= len(secret) <= SHAMIR_MAX_SECRET_BYTES:
        raise BadSplit(
            f"a secret is {SHAMIR_MIN_SECRET_BYTES}..{SHAMIR_MAX_SECRET_BYTES} bytes, "
            f"not {len(secret)}"
        )
    if len(secret) % 2:
        raise BadSplit("a secret has an even number of bytes (SLIP-39)")
    if not 1 <= shares <= SHAMIR_MAX_SHARES:
        raise BadSplit(f"shares must be 1..{SHAMIR_MAX_SHARES}, not {shares}")
    if not 1 <= threshold <= shares:
        raise BadSplit(f"threshold must be 1..{shares}, not {threshold}")
    if threshold == 1 and shares > 1:
        raise BadSplit("a threshold of 1 allows only one share; give copies of it instead")
    groups = generate_mnemonics(
        1,
        [(threshold, shares)],
        secret,
        _passphrase(passphrase),
        iteration_exponent=SHAMIR_ITERATION_EXPONENT,
    )
    mnemonics = [str(mnemonic) for mnemonic in groups[0]]
    assert len(mnemonics) == shares
    return mnemonics


def combine(shares: Sequence[str], *, passphrase: str = "") -> bytes:
    """The secret from at least `threshold` shares of one split (extra shares are ignored).

    Raises `MalformedShare` for a share that is not a SLIP-39 mnemonic (bad word,
    checksum or length), `InconsistentShares` for shares of different splits (or two
    different shares at one index), `TooFewShares` below the threshold.
    """
    decoded = [_decode(index, mnemonic) for index, mnemonic in enumerate(shares)]
    if not decoded:
        raise TooFewShares("no shares given")
    if len({share.common_parameters() for share in decoded}) != 1:
        raise InconsistentShares("the shares come from different splits")
    groups = _enough_groups(_grouped(decoded))
    try:
        encrypted: EncryptedMasterSecret = recover_ems(groups)
    except MnemonicError:
        raise InconsistentShares("the shares do not recover one secret") from None
    secret = encrypted.decrypt(_passphrase(passphrase))
    assert isinstance(secret, bytes)
    return secret


# --- internals ------------------------------------------------------------------------------


def _decode(index: int, mnemonic: str) -> Share:
    if not isinstance(mnemonic, str):
        raise MalformedShare(f"share {index} is not text")
    if len(mnemonic) > SHAMIR_MAX_SHARE_CHARS:
        raise MalformedShare(f"share {index} is over {SHAMIR_MAX_SHARE_CHARS} characters")
    try:
        share: Share = Share.from_mnemonic(" ".join(mnemonic.lower().split()))
    except (MnemonicError, ValueError):
        # Never echo the share (the library's message quotes it): it is secret material.
        raise MalformedShare(
            f"share {index} is not a SLIP-39 mnemonic (unknown word, checksum or length)"
        ) from None
    if share.iteration_exponent > SHAMIR_MAX_ITERATION_EXPONENT:
        raise MalformedShare(
            f"share {index} asks for 10000 << {share.iteration_exponent} PBKDF2 iterations; "
            f"at most exponent {SHAMIR_MAX_ITERATION_EXPONENT} is accepted"
        )
    return share


def _grouped(decoded: list[Share]) -> dict[int, ShareGroup]:
    """Shares by group, each index once; a repeated share counts once."""
    groups: dict[int, ShareGroup] = {}
    seen: dict[tuple[int, int], Share] = {}
    for share in decoded:
        slot = (share.group_index, share.index)
        if seen.setdefault(slot, share) != share:
            raise InconsistentShares(f"two different shares claim index {share.index}")
        try:
            groups.setdefault(share.group_index, ShareGroup()).add(share)
        except MnemonicError:
            raise InconsistentShares("the shares disagree on their group's threshold") from None
    return groups


def _enough_groups(groups: dict[int, ShareGroup]) -> dict[int, ShareGroup]:
    """Exactly threshold shares of exactly group-threshold groups: what SLIP-39 combines."""
    group_threshold = next(iter(groups.values())).common_parameters().group_threshold
    complete = {index: group for index, group in groups.items() if group.is_complete()}
    if len(complete) < group_threshold:
        short = [group for group in groups.values() if not group.is_complete()]
        if group_threshold == 1 and short:
            raise TooFewShares(
                f"{len(short[0])} of the {short[0].member_threshold()} shares needed were given"
            )
        raise TooFewShares(f"{len(complete)} of the {group_threshold} groups needed are complete")
    chosen = sorted(complete)[:group_threshold]
    return {index: _minimal(complete[index]) for index in chosen}


def _minimal(group: ShareGroup) -> ShareGroup:
    minimal = ShareGroup()
    for share in sorted(group, key=lambda share: share.index)[: group.member_threshold()]:
        minimal.add(share)
    return minimal


def _passphrase(passphrase: str) -> bytes:
    if len(passphrase) > SHAMIR_MAX_PASSPHRASE_CHARS:
        raise WeakPassphrase(f"passphrase over {SHAMIR_MAX_PASSPHRASE_CHARS} characters")
    if not all(" " <= char <= "~" for char in passphrase):
        raise WeakPassphrase("a SLIP-39 passphrase is printable ASCII only")
    return passphrase.encode("ascii")
