"""`anarq qlock …`: hold distributed locks, and verify or seal through a node.

One word for both halves of Qlock: `lock` would misname the crypto commands and `crypto`
the lock ones, while `qlock` names the module and matches its routes (`/qlock/…`).
"""

from __future__ import annotations

import base64
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer

from anarq.cli.output import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    client,
    emit_fields,
    emit_json,
)
from anarq.qlock.models import MESSAGE_MAX_BYTES, SEAL_PLAINTEXT_MAX_BYTES
from anarq.sdk import ApiError

app = typer.Typer(no_args_is_help=True)

# One request waits at most this long, well inside the client's timeout; longer waits
# are several requests.
REQUEST_WAIT_MS = 5_000
_DURATION_RE = re.compile(r"^(\d{1,9})(ms|s|m|h)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_ms(text: str) -> int:
    """`250ms`, `30s`, `5m`, `1h` → milliseconds."""
    match = _DURATION_RE.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 250ms, 30s, 5m or 1h")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def read_input(path: str, max_bytes: int) -> bytes:
    """The bytes of a file, or of stdin for `-`; refused above `max_bytes`."""
    if path == "-":
        data = sys.stdin.buffer.read(max_bytes + 1)
    else:
        with Path(path).open("rb") as stream:
            data = stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise typer.BadParameter(f"{path} is over {max_bytes} bytes")
    return data


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# Locks -------------------------------------------------------------------------------------


@app.command("acquire")
def acquire(
    name: str = typer.Argument(..., help="Lock name, e.g. jobs:nightly."),
    ttl: str = typer.Option("30s", help="Lease lifetime: 250ms, 30s, 5m, 1h (at most 1h)."),
    wait: str = typer.Option("0s", help="How long to wait while someone else holds it."),
    holder: str | None = typer.Option(None, help="Your name for the holder [default: an id]."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Acquire lock NAME; prints the lease with its fencing token. Exit 1 if busy."""
    body: dict[str, Any] = {"ttl_ms": parse_ms(ttl), **({"holder": holder} if holder else {})}
    deadline = time.monotonic() + parse_ms(wait) / 1000
    with client(url, token, need_token=True) as node:
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            body["wait_ms"] = min(remaining_ms, REQUEST_WAIT_MS)
            try:
                lease = node.request("POST", f"/qlock/locks/{name}", json=body)
                break
            except ApiError as exc:
                if exc.code != "qlock.lock_busy" or remaining_ms <= REQUEST_WAIT_MS:
                    raise
    emit_json(lease) if as_json else emit_fields(lease)


@app.command("extend")
def extend(
    name: str = typer.Argument(..., help="Lock name."),
    fencing_token: int = typer.Argument(..., min=1, help="The token acquire printed."),
    ttl: str = typer.Option("30s", help="New lifetime from now: 250ms, 30s, 5m, 1h."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Extend your lease on NAME; it keeps its fencing token."""
    body = {"token": fencing_token, "ttl_ms": parse_ms(ttl)}
    with client(url, token, need_token=True) as node:
        lease = node.request("POST", f"/qlock/locks/{name}/extend", json=body)
    emit_json(lease) if as_json else emit_fields(lease)


@app.command("release")
def release(
    name: str = typer.Argument(..., help="Lock name."),
    fencing_token: int = typer.Argument(..., min=1, help="The token acquire printed."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
) -> None:
    """Release your lease on NAME now."""
    with client(url, token, need_token=True) as node:
        node.request("DELETE", f"/qlock/locks/{name}", params={"token": fencing_token})
    typer.echo(f"released {name}")


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Lock name."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Show who holds NAME and until when, or that it is free."""
    with client(url, token, need_token=True) as node:
        try:
            lease = {"held": True, **node.request("GET", f"/qlock/locks/{name}")}
        except ApiError as exc:
            if exc.code != "qlock.lock_free":
                raise
            lease = {"name": name, "held": False}
    if as_json:
        emit_json(lease)
    elif lease["held"]:
        emit_fields(lease)
    else:
        typer.echo(f"{name} is free")


# Crypto ------------------------------------------------------------------------------------


@app.command("verify")
def verify(
    public_key: str = typer.Argument(..., help="Public signing key, base64."),
    signature: str = typer.Argument(..., help="Signature, base64 or base64url."),
    message: str = typer.Argument("-", help="File holding the signed message; - for stdin."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Check a signature over MESSAGE through the node. Exit 1 if it does not verify."""
    body = {
        "public_key": public_key,
        "signature": signature,
        "message": b64(read_input(message, MESSAGE_MAX_BYTES)),
    }
    with client(url, token, need_token=True) as node:
        result = node.request("POST", "/qlock/verify", json=body)
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"valid {result['algorithm']} signature by key {result['key_id']}")


@app.command("seal")
def seal(
    plaintext: str = typer.Argument("-", help="File to seal; - for stdin."),
    to: list[str] = typer.Option(..., "--to", help="Recipient key, base64; repeat for more."),
    out: Path | None = typer.Option(None, help="Write the envelope here [default: base64 out]."),
    url: str | None = URL_OPTION,
    token: str | None = TOKEN_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Seal a small file (up to 1 MiB) so only the --to keys can open it.

    The node sees the plaintext: seal on your device when even your node must not.
    """
    body = {"recipients": to, "plaintext": b64(read_input(plaintext, SEAL_PLAINTEXT_MAX_BYTES))}
    with client(url, token, need_token=True) as node:
        sealed = node.request("POST", "/qlock/seal", json=body)
    if out is not None:
        out.write_bytes(base64.b64decode(sealed["envelope"]))
    if as_json:
        emit_json(sealed)
    elif out is not None:
        typer.echo(f"sealed {sealed['size_bytes']} bytes to {', '.join(sealed['recipients'])}")
    else:
        typer.echo(sealed["envelope"])
