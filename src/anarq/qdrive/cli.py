"""`anarq drive …`: your files on your node — put, get, list, move, trash, share, quota.

Every command acts as your active identity (`anarq id use NAME`), signing each request.
"""

from __future__ import annotations

import mimetypes
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table
from anarq.qdrive import car
from anarq.qonsent.cli import parse_duration
from anarq.sdk import Client
from anarq.squid.cli import signed_client
from anarq.squid.httpsig import content_digest

app = typer.Typer(no_args_is_help=True)
IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
FILE_COLUMNS = ["path", "size", "version", "visibility", "id"]
# Parts of the node's whole 16 MiB limit save a little per-request work, but its memory
# high-water then climbs with every part (+126 MiB over a 1 GiB upload, measured, against
# about 30 MiB at 8 MiB): its peak would no longer stay flat.
PART_BYTES = 8 * 1024 * 1024
T = TypeVar("T")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def save_stream(
    response: httpx.Response, output: Path, label: str, total: int | None = None
) -> None:
    """Write a streamed body to `output` with a progress bar: into `<output>.part`, fsynced,
    then renamed, so `output` is either whole or untouched."""
    partial = output.with_name(output.name + ".part")
    with _progress() as progress, partial.open("wb") as handle:
        task = progress.add_task(label, total=total)
        for chunk in response.iter_bytes():
            handle.write(chunk)
            progress.advance(task, len(chunk))
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(output)


def _resolve(node: Client, ref: str) -> dict[str, Any]:
    result: dict[str, Any] = node.request("GET", "/qdrive/resolve", params={"ref": ref})
    return result


def _files_to_send(paths: list[Path], target: str) -> Iterator[tuple[Path, str]]:
    """(local file, drive path) pairs: a folder brings everything under it."""
    base = "/" + target.strip("/") if target.strip("/") else ""
    for path in paths:
        if path.is_dir():
            for local in sorted(p for p in path.rglob("*") if p.is_file()):
                relative = local.relative_to(path.parent).as_posix()
                yield local, f"{base}/{relative}"
        elif path.is_file():
            yield path, f"{base}/{path.name}"
        else:
            raise typer.BadParameter(f"{path} is not a file or folder")


def upload_file(
    node: Client,
    local: Path,
    remote: str,
    *,
    public: bool = False,
    overwrite: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Send one local file in parts (resumable), then store it."""
    media_type = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
    with local.open("rb") as handle:
        pieces = iter(lambda: handle.read(PART_BYTES), b"")
        return upload_stream(
            node,
            remote,
            local.stat().st_size,
            pieces,
            media_type=media_type,
            public=public,
            overwrite=overwrite,
            progress=progress,
        )


def upload_stream(
    node: Client,
    remote: str,
    size: int,
    pieces: Iterator[bytes],
    *,
    media_type: str = "application/octet-stream",
    public: bool = False,
    overwrite: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Send `size` bytes arriving as `pieces` in parts of at most the node's part size."""
    upload = node.request(
        "POST",
        "/qdrive/uploads",
        json={
            "path": remote,
            "size": size,
            "visibility": "public" if public else "private",
            "media_type": media_type,
            "overwrite": overwrite,
        },
    )
    part = min(PART_BYTES, int(upload["part_max_bytes"]))
    task = progress.add_task(remote, total=size) if progress is not None else None
    offset = 0
    for data, digest in _one_ahead(_digested(_parts(pieces, part))):
        node.request(
            "PATCH",
            f"/qdrive/uploads/{upload['id']}",
            content=data,
            headers={
                "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream",
                "Content-Digest": digest,
            },
        )
        offset += len(data)
        if progress is not None and task is not None:
            progress.update(task, completed=offset)
    stored: dict[str, Any] = node.request("POST", f"/qdrive/uploads/{upload['id']}/complete")
    if progress is not None and task is not None:
        progress.remove_task(task)
    return stored


def _parts(pieces: Iterator[bytes], size: int) -> Iterator[bytes]:
    """Re-cut `pieces` into parts of exactly `size` bytes (the last may be shorter).

    A piece that is already a whole part (a file read part by part) passes uncopied.
    """
    buffer = bytearray()
    for piece in pieces:
        if not buffer and len(piece) == size:
            yield piece
            continue
        buffer += piece
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _digested(parts: Iterator[bytes]) -> Iterator[tuple[bytes, str]]:
    """Each part with its `Content-Digest`, which the request signature then covers."""
    for data in parts:
        yield data, content_digest(data)


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """`items`, the next one made on a worker thread while the caller sends this one.

    Reading and hashing part n + 1 (both release the GIL) overlap with sending part n
    and waiting for the node's answer; at most two parts are in memory.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrive-part") as worker:
        pending = worker.submit(_next_or_done, items)
        while (made := pending.result()) is not None:
            pending = worker.submit(_next_or_done, items)
            yield made[0]


def _next_or_done(items: Iterator[T]) -> tuple[T] | None:
    for item in items:
        return (item,)
    return None


@app.command("put")
def put(
    paths: list[Path] = typer.Argument(..., help="Files or folders to upload."),
    to: str = typer.Option("/", "--to", help="Drive folder to put them in."),
    public: bool = typer.Option(
        False, help="Store unencrypted, addressed by its IPFS CID, readable by anyone."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Upload files or whole folders (encrypted unless --public); a taken path gets a version."""
    pairs = list(_files_to_send(paths, to))
    stored = []
    with signed_client(url, identity) as node, _progress() as progress:
        for local, remote in pairs:
            stored.append(upload_file(node, local, remote, public=public, progress=progress))
    if as_json:
        emit_json(stored)
    else:
        emit_table(stored, FILE_COLUMNS, title="stored")


@app.command("get")
def get(
    ref: str = typer.Argument(..., help="A path in your drive, a file id, or a CID."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write it ('-' for stdout)."),
    version: int | None = typer.Option(None, min=1, help="A version [default: the current one]."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Download a file (yours, or one shared with you), streaming to OUTPUT."""
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        params = {"version": version} if version else {}
        with node.stream("GET", f"/qdrive/files/{info['id']}/content", params=params) as response:
            total = int(response.headers.get("content-length", 0))
            if str(output) == "-":
                for chunk in response.iter_bytes():
                    typer.get_binary_stream("stdout").write(chunk)
                return
            save_stream(response, output, info["path"], total)
    console.print(f"wrote {output} ({total} bytes)")


@app.command("ls")
def ls(
    folder: str = typer.Argument("/", help="Drive folder."),
    trash: bool = typer.Option(False, help="List the trash."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List a folder of your drive: sub-folders first, then files."""
    with signed_client(url, identity) as node:
        listing = node.request("GET", "/qdrive/files", params={"folder": folder, "trash": trash})
    if as_json:
        emit_json(listing)
        return
    rows = []
    for entry in listing["entries"]:
        if entry["kind"] == "folder":
            rows.append({"name": entry["name"] + "/", "size": f"{entry['items']} items"})
        else:
            file = entry["file"]
            rows.append({**file, "name": entry["name"]})
    emit_table(rows, ["name", "size", "version", "visibility", "id"], title=listing["folder"])


@app.command("mv")
def mv(
    source: str = typer.Argument(..., help="Drive path of a file or folder."),
    target: str = typer.Argument(..., help="New drive path."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Rename a file, or move a folder with everything in it."""
    with signed_client(url, identity) as node:
        moved = node.request("POST", "/qdrive/move", json={"source": source, "target": target})
    if as_json:
        emit_json(moved)
    else:
        emit_table(moved, FILE_COLUMNS, title="moved")


@app.command("rm")
def rm(
    ref: str = typer.Argument(..., help="A path in your drive, or a file id."),
    forever: bool = typer.Option(
        False, "--forever", help="Delete for good: shred the keys; no restore."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move a file to the trash (or, with --forever, delete it for good)."""
    with signed_client(url, identity) as node:
        info = node.request("GET", "/qdrive/resolve", params={"ref": ref, "trash": forever})
        node.request(
            "DELETE", f"/qdrive/files/{info['id']}", params={"forever": "true"} if forever else {}
        )
    console.print(f"{'deleted for good' if forever else 'trashed'}: {info['path']}")


@app.command("restore")
def restore(
    ref: str = typer.Argument(..., help="A trashed file's path or id."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Bring a file back from the trash."""
    with signed_client(url, identity) as node:
        info = node.request("GET", "/qdrive/resolve", params={"ref": ref, "trash": True})
        restored = node.request("POST", f"/qdrive/files/{info['id']}/restore")
    console.print(f"restored: {restored['path']}")


@app.command("versions")
def versions(
    ref: str = typer.Argument(..., help="A path in your drive, a file id, or a CID."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A file's versions, newest first."""
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        found = node.request("GET", f"/qdrive/files/{info['id']}/versions")
    if as_json:
        emit_json(found)
    else:
        emit_table(
            found, ["version", "size", "encrypted", "readers", "created_at", "cid"], title=ref
        )


@app.command("share")
def share(
    ref: str = typer.Argument(..., help="A path in your drive, or a file id."),
    grantee: str = typer.Option(..., "--with", help="The DID to share with."),
    actions: str = typer.Option("read", help="Comma-separated: read,write,share."),
    expires: str | None = typer.Option(None, help="Lifetime, e.g. 7d, 12h."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Share a file with an identity: a Qonsent grant plus its key wrapped for them."""
    body: dict[str, Any] = {
        "grantee": grantee,
        "actions": [a.strip() for a in actions.split(",") if a.strip()],
    }
    if expires:
        body["expires_at"] = (datetime.now(UTC) + parse_duration(expires)).isoformat()
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        shared = node.request("POST", f"/qdrive/files/{info['id']}/shares", json=body)
    if as_json:
        emit_json(shared)
    else:
        console.print(
            f"shared {info['path']} with {grantee} ({', '.join(shared['actions'])}); "
            f"they read it with: anarq drive get {info['id']} -o FILE"
        )


@app.command("unshare")
def unshare(
    ref: str = typer.Argument(..., help="A path in your drive, or a file id."),
    grantee: str = typer.Option(..., "--with", help="The DID to stop sharing with."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Stop sharing a file with an identity; later versions get keys it never sees."""
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        node.request("DELETE", f"/qdrive/files/{info['id']}/shares/{quote(grantee, safe='')}")
    console.print(f"{grantee} can no longer read {info['path']}")


@app.command("quota")
def quota(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Space your drive uses (all versions and the trash) and what it may use."""
    with signed_client(url, identity) as node:
        found = node.request("GET", "/qdrive/quota")
    if as_json:
        emit_json(found)
        return
    used, limit = found["used_bytes"], found["limit_bytes"]
    share_used = used / limit * 100 if limit else 100.0
    console.print(
        f"{_human(used)} of {_human(limit)} used ({share_used:.1f} %), {found['files']} files"
    )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


@app.command("link")
def link(
    ref: str = typer.Argument(..., help="A path in your drive, or a file id."),
    expires: str | None = typer.Option(None, help="Lifetime, e.g. 7d, 12h."),
    password: bool = typer.Option(
        False, "--password", help="Ask for a password the link will need (never echoed)."
    ),
    max_downloads: int | None = typer.Option(None, min=1, help="Uses before the link closes."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Make a share link anyone holding it can download with (no identity needed)."""
    body: dict[str, Any] = {}
    if expires:
        body["expires_at"] = (datetime.now(UTC) + parse_duration(expires)).isoformat()
    if password:
        body["password"] = os.environ.get("ANARQ_LINK_PASSWORD") or typer.prompt(
            "Link password", hide_input=True, confirmation_prompt=True
        )
    if max_downloads:
        body["max_downloads"] = max_downloads
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        made = node.request("POST", f"/qdrive/files/{info['id']}/links", json=body)
        full = node.url + made["url_path"]
    if as_json:
        emit_json({**made, "url": full})
        return
    console.print(full)
    if password:
        console.print("[dim]the link needs its password in the X-Anarq-Link-Password header[/dim]")


@app.command("export")
def export(
    ref: str = typer.Argument(..., help="A path in your drive, a file id, or a CID."),
    output: Path = typer.Option(..., "-o", "--output", help="The .car file to write."),
    version: int | None = typer.Option(None, min=1, help="A version [default: the current one]."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Export a file as a CAR v1 (its IPFS UnixFS DAG, decrypted for you)."""
    with signed_client(url, identity) as node:
        info = _resolve(node, ref)
        params = {"version": version} if version else {}
        with node.stream("GET", f"/qdrive/files/{info['id']}/car", params=params) as response:
            save_stream(response, output, info["path"])
    console.print(f"wrote {output}")


@app.command("import")
def import_car(
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="A CAR v1 file."),
    to: str = typer.Option("/", "--to", help="Drive folder to import into."),
    public: bool = typer.Option(False, help="Store unencrypted, keeping the IPFS CIDs."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import the files of a CAR (a UnixFS file or directory); every block is verified."""
    base = "/" + to.strip("/") if to.strip("/") else ""
    stored = []
    try:
        with source.open("rb") as handle, signed_client(url, identity) as node:
            reader = car.CarReader.open(handle)
            root = reader.roots[0]
            found = list(car.files(reader, root))
            with _progress() as progress:
                for entry in found:
                    name = entry.path or f"/{source.stem}"
                    stored.append(
                        upload_stream(
                            node,
                            base + name,
                            entry.size,
                            car.content(reader, entry.cid),
                            media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                            public=public,
                            progress=progress,
                        )
                    )
    except car.BadCar as exc:
        raise typer.BadParameter(f"{source}: {exc}") from None
    if as_json:
        emit_json(stored)
    else:
        emit_table(stored, FILE_COLUMNS, title="imported")
