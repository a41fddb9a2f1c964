"""Sign in with sQuid: sign-ins per second through the whole OpenID Connect code flow.

    python -m benchmarks.oidc_signins [--people 200] [--threads 4] [--cluster]

A real `anarq up` node on loopback, one registered application (a confidential client,
EdDSA ID tokens), and `--people` identities (Ed25519 did:keys, signed SDK clients).
One sign-in is what a browser and the application do together:
1. the person's user agent asks the authorization endpoint (a signed request),
2. on a first sign-in, answers the consent (a Qonsent grant with its signed receipt),
3. the application exchanges the code with its PKCE verifier and its secret for an ID
   token, an access token and a refresh token,
4. the application verifies the ID token against the JWKS (fetched once) and calls
   userinfo.
Two rounds: `first` (every person consents) and `returning` (consent remembered: steps
1, 3, 4). Figures: sign-ins/s per round and p50/p95 per sign-in, with `--threads` at once.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

from anarq.qlock import SigningKey
from anarq.sdk import Client
from anarq.sdk.signing import RequestSigner
from benchmarks._nodes import latency_summary
from benchmarks.http_overhead import cluster_env, drop_database, free_port, start_node

CALLBACK = "https://app.example/callback"


def person(url: str, n: int) -> Client:
    signer = RequestSigner.for_key(SigningKey.generate(hybrid=False))
    client = Client(url, signer=signer, timeout_seconds=60)
    public = base64.b64encode(signer.key.verify_key.to_bytes()).decode()
    client.request("POST", "/squid/identities", json={"name": f"person {n}", "public_key": public})
    return client


class App:
    """The relying party: its credentials, the provider's keys, one HTTP connection pool."""

    def __init__(self, url: str, registered: dict[str, Any]) -> None:
        self.url = url
        self.client_id = registered["client_id"]
        self.http = httpx.Client(
            base_url=url, auth=(self.client_id, registered["client_secret"]), timeout=60
        )
        self.keys = KeySet.import_key_set(self.http.get("/oidc/jwks").json())

    def authorization(self) -> tuple[dict[str, str], str, str]:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        nonce = secrets.token_urlsafe(12)
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid profile offline_access",
            "state": secrets.token_urlsafe(12),
            "nonce": nonce,
            "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
        return params, verifier, nonce

    def finish(self, redirect_to: str, verifier: str, nonce: str) -> None:
        code = parse_qs(urlsplit(redirect_to).query)["code"][0]
        tokens = self.http.post(
            "/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": CALLBACK,
                "code_verifier": verifier,
            },
        )
        tokens.raise_for_status()
        issued = tokens.json()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # joserfc's note on the name EdDSA
            claims = jwt.decode(issued["id_token"], self.keys, algorithms=["EdDSA"]).claims
        assert claims["aud"] == self.client_id and claims["nonce"] == nonce
        info = httpx.get(
            f"{self.url}/oidc/userinfo",
            headers={"Authorization": f"Bearer {issued['access_token']}"},
        )
        info.raise_for_status()
        assert info.json()["sub"] == claims["sub"]


def sign_in(app: App, who: Client) -> float:
    started = time.perf_counter()
    params, verifier, nonce = app.authorization()
    outcome = who.request("GET", "/oidc/authorize", params=params)
    if "redirect_to" not in outcome:
        outcome = who.request(
            "POST",
            "/oidc/authorize/consent",
            json={"request_id": outcome["request_id"], "approve": True},
        )
    app.finish(outcome["redirect_to"], verifier, nonce)
    return time.perf_counter() - started


def round_of(app: App, people: list[Client], threads: int) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(lambda who: sign_in(app, who), people))
    elapsed = time.perf_counter() - started
    return {
        "sign_ins": len(people),
        "sign_ins_per_second": round(len(people) / elapsed, 1),
        **latency_summary(latencies, "ms"),
    }


def run_backend(backend: str, people: int, threads: int, work: Path) -> dict[str, Any]:
    env, database = cluster_env() if backend == "cluster" else ({}, "")
    data_dir = work / f"node-{backend}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    node = start_node(port, {"ANARQ_PUBLIC_URL": url, **env}, data_dir)
    try:
        developer = person(url, 0)
        registered = developer.request(
            "POST", "/oidc/clients", json={"name": "Bench app", "redirect_uris": [CALLBACK]}
        )
        app = App(url, registered)
        crowd = [person(url, n) for n in range(1, people + 1)]
        first = round_of(app, crowd, threads)
        returning = round_of(app, crowd, threads)
        for client in [developer, *crowd]:
            client.close()
        app.http.close()
    finally:
        node.terminate()
        node.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    if database:
        drop_database(database)
    return {"first": first, "returning": returning}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--cluster", action="store_true")
    args = parser.parse_args()
    backends = ["embedded", "cluster"] if args.cluster else ["embedded"]
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as work:
        results = {
            "benchmark": "oidc_signins",
            "people": args.people,
            "threads": args.threads,
            "cpus": os.cpu_count(),
            "backends": {
                b: run_backend(b, args.people, args.threads, Path(work)) for b in backends
            },
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
