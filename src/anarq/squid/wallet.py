"""The CLI's identity wallet: keystore files under `$ANARQ_HOME/identities` (default ~/.anarq).

Each file holds one identity's private key sealed with its passphrase (Qlock keystore:
Argon2id + AEAD). The file is the portable identity: export copies it, import checks
it and copies it back. Nothing in it is readable without the passphrase.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from anarq.kernel.errors import BadRequest, Conflict, NotFound
from anarq.qlock import SigningKey, lock, unlock
from anarq.squid.didkey import did_from_ed25519

WALLET_FORMAT = "anarq-identity/v1"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ACTIVE_FILE = "active"


@dataclass(frozen=True)
class StoredIdentity:
    name: str
    did: str
    path: Path


def home() -> Path:
    return Path(os.environ.get("ANARQ_HOME", Path.home() / ".anarq"))


def _folder() -> Path:
    folder = home() / "identities"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _path(name: str) -> Path:
    if not NAME_RE.match(name):
        raise BadRequest(f"{name!r} is not a usable identity name (letters, digits, . _ -)")
    return _folder() / f"{name}.json"


def create(name: str, passphrase: str, *, hybrid: bool = True) -> tuple[StoredIdentity, SigningKey]:
    path = _path(name)
    if path.exists():
        raise Conflict(f"an identity named {name!r} already exists in {path.parent}")
    key = SigningKey.generate(hybrid=hybrid)
    upcoming = SigningKey.generate(hybrid=hybrid)  # committed to now, used at the first rotation
    did = did_from_ed25519(key.verify_key.ed25519_bytes())
    _write(
        path,
        {
            "format": WALLET_FORMAT,
            "name": name,
            "did": did,
            "keystore": _sealed(key, passphrase),
            "next_keystore": _sealed(upcoming, passphrase),
        },
    )
    if active_name() is None:
        use(name)
    return StoredIdentity(name, did, path), key


def annotate(identity: StoredIdentity, **fields: object) -> None:
    """Keep extra facts in the identity file (e.g. an AID's secret link to its root)."""
    document = _read(identity.path)
    document.update(fields)
    _write(identity.path, document)


def load(name: str) -> StoredIdentity:
    path = _path(name)
    if not path.exists():
        raise NotFound(f"no identity named {name!r} in {path.parent} (see `anarq id list`)")
    document = _read(path)
    return StoredIdentity(str(document["name"]), str(document["did"]), path)


def unlock_key(identity: StoredIdentity, passphrase: str) -> SigningKey:
    document = _read(identity.path)
    key = SigningKey.from_bytes(unlock(base64.b64decode(str(document["keystore"])), passphrase))
    return key


def key_hash(key: SigningKey) -> str:
    """The pre-rotation commitment to a key: SHA-256 (hex) of its public form."""
    return hashlib.sha256(key.verify_key.to_bytes()).hexdigest()


def unlock_next_key(identity: StoredIdentity, passphrase: str) -> SigningKey:
    document = _read(identity.path)
    if not isinstance(document.get("next_keystore"), str):
        raise BadRequest(f"{identity.path} holds no pre-committed next key; it cannot rotate")
    return SigningKey.from_bytes(
        unlock(base64.b64decode(str(document["next_keystore"])), passphrase)
    )


def advance(
    identity: StoredIdentity, passphrase: str, current: SigningKey, upcoming: SigningKey
) -> None:
    """After a rotation: the next key becomes current, `upcoming` becomes next."""
    document = _read(identity.path)
    document["keystore"] = _sealed(current, passphrase)
    document["next_keystore"] = _sealed(upcoming, passphrase)
    _write(identity.path, document)


def _sealed(key: SigningKey, passphrase: str) -> str:
    return base64.b64encode(lock(key.to_bytes(), passphrase)).decode()


def all_identities() -> list[StoredIdentity]:
    found = []
    for path in sorted(_folder().glob("*.json")):
        try:
            document = _read(path)
        except BadRequest:
            continue
        found.append(StoredIdentity(str(document["name"]), str(document["did"]), path))
    return found


def use(name: str) -> None:
    load(name)
    (home() / ACTIVE_FILE).write_text(name + "\n")


def active_name() -> str | None:
    chosen = os.environ.get("ANARQ_IDENTITY")
    if chosen:
        return chosen
    path = home() / ACTIVE_FILE
    return path.read_text().strip() or None if path.exists() else None


def export_to(name: str, target: Path) -> None:
    identity = load(name)
    _write(target, _read(identity.path))


def import_from(source: Path, passphrase: str, *, name: str | None = None) -> StoredIdentity:
    """Copy an exported identity in, after proving its passphrase opens it."""
    document = _read(source)
    new_name = name or str(document["name"])
    path = _path(new_name)
    if path.exists():
        raise Conflict(f"an identity named {new_name!r} already exists; import with --name")
    unlock_key(StoredIdentity(new_name, str(document["did"]), source), passphrase)
    _write(path, {**document, "name": new_name})
    if active_name() is None:
        use(new_name)
    return StoredIdentity(new_name, str(document["did"]), path)


def _read(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BadRequest(f"{path} is not an identity file: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != WALLET_FORMAT:
        raise BadRequest(f"{path} is not an {WALLET_FORMAT} file")
    for field in ("name", "did", "keystore"):
        if not isinstance(document.get(field), str):
            raise BadRequest(f"{path} has no {field}")
    return document


def _write(path: Path, document: dict[str, object]) -> None:
    """Write atomically with mode 0600: temp file, fsync, rename."""
    temp = path.with_suffix(".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(json.dumps(document, indent=2))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
