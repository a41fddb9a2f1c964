"""`anarq pic …`: your photos and videos — import, list, timeline, duplicates, albums, sharing.

Every command acts as your active identity (`anarq id use NAME`), signing each request.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table, errors
from anarq.qdrive.cli import IDENTITY_OPTION, upload_file
from anarq.sdk import ApiError, Client
from anarq.sdk.client import DEFAULT_URL
from anarq.sdk.signing import RequestSigner

app = typer.Typer(no_args_is_help=True)
album_app = typer.Typer(no_args_is_help=True, help="Albums: create, list, add photos, unlock.")
app.add_typer(album_app, name="album")

# Files bigger than this go to the drive in resumable parts first, then become photos.
ONE_REQUEST_MAX_BYTES = 8 * 1024 * 1024
# Imports wait for thumbnails (and a video's proxy): give the node time.
TIMEOUT_SECONDS = 900.0
MEDIA_SUFFIXES = {
    ".jpg", ".jpeg", ".png", ".webp", ".gif", ".heic", ".heif", ".avif",
    ".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi",
}  # fmt: skip
PHOTO_COLUMNS = ["name", "kind", "width", "height", "taken_at", "id"]
UNLOCK_OPTION = typer.Option(
    None,
    "--unlock",
    envvar="ANARQ_ALBUM_UNLOCK",
    help="Unlock token(s) of locked albums, from `anarq pic album unlock`.",
)


def _client(url: str | None, identity: str | None) -> Client:
    from anarq.squid import wallet
    from anarq.squid.cli import chosen, passphrase

    stored = chosen(identity)
    key = wallet.unlock_key(stored, passphrase())
    return Client(
        url or DEFAULT_URL,
        signer=RequestSigner(did=stored.did, key=key),
        timeout_seconds=TIMEOUT_SECONDS,
    )


def _headers(unlock: str | None) -> dict[str, str]:
    return {"X-Anarq-Album-Unlock": unlock} if unlock else {}


def _media_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """(local file, name under /Photos) pairs: a folder brings its photos and videos."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for local in sorted(p for p in path.rglob("*") if p.is_file()):
                if local.suffix.lower() in MEDIA_SUFFIXES and not local.name.startswith("."):
                    found.append((local, local.relative_to(path.parent).as_posix()))
        elif path.is_file():
            found.append((path, path.name))
        else:
            raise typer.BadParameter(f"{path} is not a file or folder")
    return found


def _album_id(node: Client, ref: str, *, create: bool = False) -> str:
    """An album by id or by name (created when asked and missing)."""
    albums: list[dict[str, Any]] = node.request("GET", "/qpic/albums")
    by_id = [a for a in albums if a["id"] == ref]
    if by_id:
        return str(by_id[0]["id"])
    named = [a for a in albums if a["name"] == ref]
    if len(named) == 1:
        return str(named[0]["id"])
    if len(named) > 1:
        ids = ", ".join(a["id"] for a in named)
        raise typer.BadParameter(f"several albums are named {ref!r}: use an id ({ids})")
    if not create:
        raise typer.BadParameter(f"no album {ref!r}")
    made: dict[str, Any] = node.request("POST", "/qpic/albums", json={"name": ref})
    return str(made["id"])


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="Photos, videos, or folders of them."),
    album: str | None = typer.Option(None, "--album", help="Album to put them in (made if new)."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Import photos and videos (folders recursively): stored encrypted in your drive under
    /Photos, with thumbnails; big files go up in resumable parts first."""
    files = _media_files(paths)
    imported: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    with _client(url, identity) as node, _progress() as progress:
        album_id = _album_id(node, album, create=True) if album else None
        task = progress.add_task("importing", total=len(files))
        for local, name in files:
            progress.update(task, description=name)
            try:
                imported.append(_import_one(node, local, name, album_id, progress))
            except ApiError as exc:
                failed.append((str(local), str(exc)))
            progress.advance(task)
    if as_json:
        emit_json({"imported": imported, "failed": [{"file": f, "error": e} for f, e in failed]})
    else:
        emit_table(imported, PHOTO_COLUMNS, title="imported")
        for local_name, error in failed:
            errors.print(f"[red]{local_name}[/red]: {error}")
    if failed:
        raise typer.Exit(1)


def _import_one(
    node: Client, local: Path, name: str, album_id: str | None, progress: Progress
) -> dict[str, Any]:
    params = {"album_id": album_id} if album_id else {}
    if local.stat().st_size <= ONE_REQUEST_MAX_BYTES:
        photo: dict[str, Any] = node.request(
            "POST", "/qpic/upload", params={"name": name, **params}, content=local.read_bytes()
        )
        return photo
    stored = _upload_unique(node, local, f"/Photos/{name}", progress)
    body = {"file_id": stored["id"], **params}
    try:
        made: dict[str, Any] = node.request("POST", "/qpic/photos", json=body)
    except ApiError:
        node.request("DELETE", f"/qdrive/files/{stored['id']}", params={"forever": "true"})
        raise
    return made


def _upload_unique(node: Client, local: Path, remote: str, progress: Progress) -> dict[str, Any]:
    """Upload to `remote`, or beside it when the name is taken (never a new version)."""
    try:
        return upload_file(node, local, remote, overwrite=False, progress=progress)
    except ApiError as exc:
        if exc.status != 409:
            raise
    stem, dot, ext = remote.rpartition(".")
    beside = f"{stem}-{os.urandom(4).hex()}{dot}{ext}" if dot else f"{remote}-{os.urandom(4).hex()}"
    return upload_file(node, local, beside, overwrite=False, progress=progress)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@app.command("ls")
def ls(
    album: str | None = typer.Option(None, "--album", help="An album's photos (name or id)."),
    limit: int = typer.Option(100, min=1, max=500),
    unlock: str | None = UNLOCK_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your photos (or an album's), newest capture first."""
    with _client(url, identity) as node:
        params: dict[str, Any] = {"limit": limit}
        if album:
            params["album"] = _album_id(node, album)
        page = node.request("GET", "/qpic/photos", params=params, headers=_headers(unlock))
    if as_json:
        emit_json(page)
    else:
        emit_table(page["photos"], PHOTO_COLUMNS, title=album or "photos")


@app.command("timeline")
def timeline(
    year: int | None = typer.Option(None, min=1, max=9998),
    month: int | None = typer.Option(None, min=1, max=12),
    limit: int = typer.Option(200, min=1, max=500),
    unlock: str | None = UNLOCK_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your photos by the day they were taken, newest first."""
    params = {k: v for k, v in {"year": year, "month": month, "limit": limit}.items() if v}
    with _client(url, identity) as node:
        found = node.request("GET", "/qpic/timeline", params=params, headers=_headers(unlock))
    if as_json:
        emit_json(found)
        return
    for day in found["days"]:
        console.print(f"[bold]{day['date']}[/bold]  {day['count']} photos")
        for photo in day["photos"]:
            console.print(
                f"  {photo['taken_at'][11:16]}  {photo['name']}  [dim]{photo['id']}[/dim]"
            )


@app.command("dupes")
def dupes(
    distance: int = typer.Option(8, min=0, max=32, help="Most pHash bits two copies differ in."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Groups of near-duplicate photos (resized, recompressed, re-saved copies)."""
    with _client(url, identity) as node:
        found = node.request("GET", "/qpic/dupes", params={"distance": distance})
    if as_json:
        emit_json(found)
        return
    if not found["groups"]:
        console.print(f"no near-duplicates among {found['photos_compared']} photos")
    for number, group in enumerate(found["groups"], 1):
        console.print(f"[bold]group {number}[/bold] (up to {group['max_distance']} bits apart)")
        for photo in group["photos"]:
            console.print(f"  {photo['name']}  {photo['width']}x{photo['height']}  {photo['id']}")


@app.command("share")
def share(
    photo: str = typer.Argument(..., help="A photo id."),
    grantee: str = typer.Option(..., "--with", help="The DID to share with."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Share a photo: they read a copy without EXIF, GPS or XMP; your original stays intact."""
    with _client(url, identity) as node:
        made = node.request("POST", f"/qpic/photos/{photo}/shares", json={"grantee": grantee})
    if as_json:
        emit_json(made)
    else:
        console.print(f"shared {photo} with {grantee} (without its metadata)")


@app.command("thumb")
def thumb(
    photo: str = typer.Argument(..., help="A photo id."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the WebP."),
    size: int = typer.Option(256, help="256 or 1024 (longest side)."),
    unlock: str | None = UNLOCK_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Save a photo's thumbnail (yours, or one shared with you)."""
    if size not in (256, 1024):
        raise typer.BadParameter("size is 256 or 1024")
    with (
        _client(url, identity) as node,
        node.stream(
            "GET", f"/qpic/photos/{photo}/thumb", params={"size": size}, headers=_headers(unlock)
        ) as response,
    ):
        partial = output.with_name(output.name + ".part")
        with partial.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
        partial.replace(output)
    console.print(f"wrote {output}")


# Albums ----------------------------------------------------------------------------------


@album_app.command("create")
def album_create(
    name: str = typer.Argument(..., help="The album's name."),
    parent: str | None = typer.Option(None, "--parent", help="Put it inside this album."),
    lock: bool = typer.Option(
        False, "--lock", help="Lock it with a passphrase (asked, or ANARQ_ALBUM_PASSPHRASE)."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Create an album, optionally inside another one, optionally locked."""
    body: dict[str, Any] = {"name": name}
    if lock:
        body["passphrase"] = _album_passphrase(confirm=True)
    with _client(url, identity) as node:
        if parent:
            body["parent_id"] = _album_id(node, parent)
        made = node.request("POST", "/qpic/albums", json=body)
    if as_json:
        emit_json(made)
    else:
        console.print(f"album {made['name']} {made['id']}" + (" (locked)" if lock else ""))


@album_app.command("ls")
def album_ls(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your albums."""
    with _client(url, identity) as node:
        found = node.request("GET", "/qpic/albums")
    if as_json:
        emit_json(found)
    else:
        emit_table(found, ["name", "photos", "albums", "locked", "parent_id", "id"], title="albums")


@album_app.command("add")
def album_add(
    album: str = typer.Argument(..., help="Album name or id."),
    photos: list[str] = typer.Argument(..., help="Photo ids."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Add photos to an album."""
    with _client(url, identity) as node:
        album_id = _album_id(node, album)
        found = node.request("POST", f"/qpic/albums/{album_id}/photos", json={"photo_ids": photos})
    if as_json:
        emit_json(found)
    else:
        console.print(f"{found['name']} now holds {found['photos']} photos")


@album_app.command("unlock")
def album_unlock(
    album: str = typer.Argument(..., help="Album name or id."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Unlock a locked album for 10 minutes: prints the token to pass as --unlock."""
    secret = _album_passphrase(confirm=False)
    with _client(url, identity) as node:
        album_id = _album_id(node, album)
        made = node.request("POST", f"/qpic/albums/{album_id}/unlock", json={"passphrase": secret})
    if as_json:
        emit_json(made)
        return
    typer.echo(made["token"])
    errors.print(f"[dim]valid until {made['expires_at']}: export ANARQ_ALBUM_UNLOCK=<token>[/dim]")


def _album_passphrase(*, confirm: bool) -> str:
    given = os.environ.get("ANARQ_ALBUM_PASSPHRASE")
    if given:
        return given
    value: str = typer.prompt("Album passphrase", hide_input=True, confirmation_prompt=confirm)
    return value
