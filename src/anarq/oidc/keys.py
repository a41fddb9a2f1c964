"""The provider's signing keys: one Ed25519 key (ID tokens as `EdDSA` or, by RFC 9864's
fully specified name, `Ed25519`) and one RSA key (`RS256`, for clients that know no other).

Keys are made by the first worker that signs, stored sealed under the node secret and
shared by every worker; the JWKS lists every key that is not retired long ago, so a
token signed before a rotation still verifies. Token code is joserfc's.
"""

from __future__ import annotations

import threading
import warnings
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, OKPKey, RSAKey
from sqlalchemy import select, update

from anarq.kernel import Kernel
from anarq.kernel.db import insert_ignore
from anarq.node.identity import NodeIdentity
from anarq.oidc import tables
from anarq.qlock import lock, unlock

# The algorithm names a client may ask for, and the key type that signs each.
ALGORITHMS = {"EdDSA": "OKP", "Ed25519": "OKP", "RS256": "RSA"}
DEFAULT_ALG = "EdDSA"
RSA_BITS = 2048
# A retired key stays published this long, for tokens it signed before.
RETIRED_KEPT = timedelta(days=2)

Key = OKPKey | RSAKey


class SigningKeys:
    def __init__(self, kernel: Kernel, identity: NodeIdentity) -> None:
        self.k = kernel
        self.identity = identity
        self._current: dict[str, Key] = {}
        self._lock = threading.Lock()

    def sign(self, claims: dict[str, Any], alg: str) -> str:
        """A compact JWS (a JWT) of `claims`, signed with the current key for `alg`."""
        key = self.current(ALGORITHMS[alg])
        header = {"alg": alg, "typ": "JWT", "kid": key.kid}
        with warnings.catch_warnings():
            # joserfc flags the name `EdDSA` (RFC 9864 prefers `Ed25519`); most relying
            # parties still know only `EdDSA`, and the signature is the same.
            warnings.simplefilter("ignore")
            return jwt.encode(header, claims, key, algorithms=[alg])

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a JWT this provider signed; joserfc's error if it did not."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            decoded = jwt.decode(token, self.key_set(), algorithms=list(ALGORITHMS))
        return dict(decoded.claims)

    def current(self, kty: str) -> Key:
        cached = self._current.get(kty)
        if cached is not None:
            return cached
        with self._lock:
            if kty not in self._current:
                self._current[kty] = self._load_or_create(kty)
        return self._current[kty]

    def jwks(self) -> dict[str, Any]:
        """The public keys, as `/oidc/jwks` publishes them."""
        self.current("OKP"), self.current("RSA")  # both exist before anyone asks
        cutoff = self.k.clock.now() - RETIRED_KEPT
        with self.k.db.read() as conn:
            rows = conn.execute(
                select(tables.keys.c.public_jwk, tables.keys.c.retired_at).order_by(
                    tables.keys.c.created_at
                )
            ).all()
        return {
            "keys": [
                dict(row.public_jwk)
                for row in rows
                if row.retired_at is None or row.retired_at > cutoff
            ]
        }

    def key_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())  # type: ignore[arg-type]

    def rotate(self) -> list[str]:
        """Retire the signing keys and make new ones; the new key ids."""
        now = self.k.clock.now()
        with self.k.db.write() as tx:
            tx.execute(
                update(tables.keys).where(tables.keys.c.retired_at.is_(None)).values(retired_at=now)
            )
        with self._lock:
            self._current.clear()
        return [str(self.current("OKP").kid), str(self.current("RSA").kid)]

    def _load_or_create(self, kty: str) -> Key:
        secret = self.identity.secret()
        row = self._live_row(kty)
        if row is None:
            generated: Key = (
                OKPKey.generate_key("Ed25519") if kty == "OKP" else RSAKey.generate_key(RSA_BITS)
            )
            kid = generated.thumbprint()
            public = {**generated.as_dict(private=False), "kid": kid, "use": "sig"}
            public["alg"] = "RS256" if kty == "RSA" else "EdDSA"
            with self.k.db.write() as tx:
                insert_ignore(
                    tx,
                    tables.keys,
                    {
                        "kid": kid,
                        "alg": kty,
                        "public_jwk": public,
                        "sealed_private_key": lock(generated.as_pem(private=True), secret).decode(),
                        "created_at": self.k.clock.now(),
                    },
                )
            # Another worker may have made one at the same time: the oldest live key wins.
            row = self._live_row(kty)
        assert row is not None
        pem = unlock(row.sealed_private_key.encode(), secret)
        cls = OKPKey if kty == "OKP" else RSAKey
        return cls.import_key(pem, parameters={"kid": row.kid})

    def _live_row(self, kty: str) -> Any:
        with self.k.db.read() as conn:
            return conn.execute(
                select(tables.keys)
                .where(tables.keys.c.alg == kty, tables.keys.c.retired_at.is_(None))
                .order_by(tables.keys.c.created_at, tables.keys.c.kid)
                .limit(1)
            ).first()
