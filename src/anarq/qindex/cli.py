"""`anarq search …` and `anarq index …`: find what you may read; keep pointers to CIDs.

Every command acts as your active identity (`anarq id use NAME`), signing each request.
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

import typer
from rich.table import Table
from rich.text import Text

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table
from anarq.squid.cli import signed_client

app = typer.Typer(
    no_args_is_help=True,
    help="Pointers: keys of your namespace that point at CIDs, every version kept.",
)
# One command under its own word (`anarq search QUERY`): a group that runs its callback.
search_app = typer.Typer(subcommand_metavar="", context_settings={"allow_interspersed_args": True})
IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
OWNER_OPTION = typer.Option(
    None, "--owner", help="Whose namespace (a DID) [default: your own]; needs their grant."
)
POINTER_COLUMNS = ["key", "version", "cid", "tags", "updated_at"]
_MARKED = re.compile(r"<mark>(.*?)</mark>")


@search_app.callback(invoke_without_command=True)
def search(
    query: str = typer.Argument(..., help="Words to find; the last also matches as a prefix."),
    module: str | None = typer.Option(None, help="Only this module's documents (e.g. qdrive)."),
    type: str | None = typer.Option(None, "--type", help="Only this type (e.g. file)."),
    owner: str | None = typer.Option(None, help="Only this owner's documents (a DID)."),
    since: str | None = typer.Option(None, help="Updated at or after (ISO 8601 date or time)."),
    until: str | None = typer.Option(None, help="Updated at or before (ISO 8601 date or time)."),
    limit: int = typer.Option(10, min=1, max=50, help="Hits per page."),
    cursor: str | None = typer.Option(None, help="Next page: the cursor a search printed."),
    meaning: bool = typer.Option(
        False,
        "--meaning",
        help="Find documents close in meaning, not only those holding the words "
        "(when the node has semantic search on).",
    ),
    hybrid: bool = typer.Option(
        False, "--hybrid", help="Both: word matches and meaning, one ranking."
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Search everything you may read: ranked, typo-tolerant, with highlighted snippets.

    Examples: `anarq search "trip notes"`, `anarq search invoice --module qdrive --since
    2025-01-01`, `anarq search "mountain holiday" --meaning`. Only your own documents and
    those shared with you are ever found.
    """
    if meaning and hybrid:
        raise typer.BadParameter("choose one of --meaning and --hybrid")
    mode = "semantic" if meaning else "hybrid" if hybrid else "text"
    params: dict[str, Any] = {"q": query, "limit": limit, "mode": mode}
    for name, value in (
        ("module", module),
        ("type", type),
        ("owner", owner),
        ("since", since),
        ("until", until),
        ("cursor", cursor),
    ):
        if value is not None:
            params[name] = value
    with signed_client(url, identity) as node:
        found = node.request("GET", "/qindex/search", params=params)
    if as_json:
        emit_json(found)
        return
    _print_hits(found)


def _print_hits(found: dict[str, Any]) -> None:
    if not found["hits"]:
        console.print("[dim]nothing found[/dim]")
        return
    table = Table(show_lines=True)
    for column in ("title", "snippet", "module", "score"):
        table.add_column(column)
    for hit in found["hits"]:
        table.add_row(
            Text(hit["title"]),
            _highlighted(hit["snippet"]),
            Text(f"{hit['module']}:{hit['type']}"),
            Text(f"{hit['score']:.3f}"),
        )
    console.print(table)
    if found.get("next_cursor"):
        console.print(f"more: --cursor {found['next_cursor']}", highlight=False, markup=False)


def _highlighted(snippet: str) -> Text:
    """The snippet (escaped text with <mark>) as terminal text with bold matches."""
    text = Text()
    position = 0
    for match in _MARKED.finditer(snippet):
        text.append(html.unescape(snippet[position : match.start()]))
        text.append(html.unescape(match.group(1)), style="bold yellow")
        position = match.end()
    text.append(html.unescape(snippet[position:]))
    return text


def _path(key: str) -> str:
    return quote(key, safe="/")


def _rows(pointers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**p, "tags": ", ".join(p["tags"])} for p in pointers]


@app.command("put")
def put(
    key: str = typer.Argument(..., help="The key, e.g. site/home or profile.avatar."),
    cid: str = typer.Argument(..., help="The CID it points at from now on."),
    tag: list[str] | None = typer.Option(
        None, "--tag", help="Tag it (repeat for more); replaces its tags [default: keep them]."
    ),
    expect_version: int | None = typer.Option(
        None,
        "--expect-version",
        min=0,
        help="Refuse unless the pointer is at this version (0: new); guards against races.",
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Point KEY of your namespace at CID; the previous CID stays in its history."""
    body: dict[str, Any] = {"cid": cid}
    if tag:
        body["tags"] = tag
    if expect_version is not None:
        body["expected_version"] = expect_version
    with signed_client(url, identity) as node:
        pointer = node.request("PUT", f"/qindex/pointers/{_path(key)}", json=body)
    if as_json:
        emit_json(pointer)
    else:
        console.print(f"{key} → {pointer['cid']} (version {pointer['version']})", markup=False)


@app.command("get")
def get(
    key: str = typer.Argument(..., help="The key."),
    version: int | None = typer.Option(None, min=1, help="A version [default: the current]."),
    owner: str | None = OWNER_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print the CID a key points at (now, or at --version)."""
    params: dict[str, Any] = {}
    if version is not None:
        params["version"] = version
    if owner is not None:
        params["owner"] = owner
    with signed_client(url, identity) as node:
        pointer = node.request("GET", f"/qindex/pointers/{_path(key)}", params=params)
    if as_json:
        emit_json(pointer)
    else:
        typer.echo(pointer["cid"])


@app.command("ls")
def ls(
    prefix: str = typer.Option("", help="Only keys starting with this."),
    tag: str | None = typer.Option(None, help="Only keys with this tag."),
    owner: str | None = OWNER_OPTION,
    limit: int = typer.Option(200, min=1, max=200, help="At most this many."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """List pointers by key: yours, or those of --owner that you may read."""
    params: dict[str, Any] = {"prefix": prefix, "limit": limit}
    if tag is not None:
        params["tag"] = tag
    if owner is not None:
        params["owner"] = owner
    with signed_client(url, identity) as node:
        listed = node.request("GET", "/qindex/pointers", params=params)
    if as_json:
        emit_json(listed)
    else:
        emit_table(_rows(listed["pointers"]), POINTER_COLUMNS, title="pointers")


@app.command("history")
def history(
    key: str = typer.Argument(..., help="The key."),
    owner: str | None = OWNER_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Every version of a pointer, newest first, each with the CID it replaced."""
    params = {"owner": owner} if owner is not None else {}
    with signed_client(url, identity) as node:
        versions = node.request("GET", f"/qindex/history/{_path(key)}", params=params)
    if as_json:
        emit_json(versions)
    else:
        emit_table(_rows(versions), ["version", "cid", "prev_cid", "tags", "updated_at"], title=key)


@app.command("rm")
def rm(
    key: str = typer.Argument(..., help="The key."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Delete one of your pointers, with its whole history."""
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/qindex/pointers/{_path(key)}")
    console.print(f"deleted {key}", markup=False)
