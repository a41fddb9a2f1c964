"""`anarq mask …`: privacy transforms — profiles on your node; text, images and tables here.

`detect`, `redact`, `strip` and `anonymize` run on this machine and need no node (add
`--on-node` to `detect`, `redact` and `strip` to ask your node instead). `profile …` and
`apply` act on your node as your active identity (`anarq id use NAME`).
"""

from __future__ import annotations

import json
import secrets
import sys
from pathlib import Path
from typing import Any, cast

import typer

from anarq.cli.output import JSON_OPTION, URL_OPTION, console, emit_json, emit_table, errors
from anarq.kernel.errors import AnarqError
from anarq.qmask import image, kanon, pii, rules
from anarq.squid.cli import signed_client

app = typer.Typer(no_args_is_help=True)
profile_app = typer.Typer(no_args_is_help=True, help="Named, versioned masking profiles.")
app.add_typer(profile_app, name="profile")
IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
ON_NODE_OPTION = typer.Option(
    False, "--on-node", help="Ask your node instead of working here (signed as you)."
)
TYPES_OPTION = typer.Option(
    None, "--type", help=f"Only these types (repeatable): {', '.join(pii.ENTITY_TYPES)}."
)
REGIONS_OPTION = typer.Option(
    ",".join(pii.DEFAULT_REGIONS), "--regions", help="Countries whose national phone numbers count."
)
ENTITY_COLUMNS = ["type", "start", "end", "score", "text"]


def _text(text: str | None) -> str:
    if text is None or text == "-":
        return sys.stdin.read()
    return text


def _regions(regions: str) -> list[str]:
    return [r.strip().upper() for r in regions.split(",") if r.strip()]


def _fail(message: str) -> typer.Exit:
    errors.print(message, style="red", markup=False)
    return typer.Exit(1)


# Profiles --------------------------------------------------------------------------------


@profile_app.command("create")
def profile_create(
    name: str = typer.Argument(..., help="Profile name (a taken name gets a new version)."),
    rule: list[str] = typer.Option(
        [], "--rule", help="field=action[:arg], e.g. email=pseudonym, birth_date=generalize:year."
    ),
    file: Path | None = typer.Option(
        None, "--file", help="A JSON profile: {description, rules: [{field, action, arg}], image}."
    ),
    description: str | None = typer.Option(None, help="What the profile is for."),
    images: bool = typer.Option(False, "--images", help="Also strip image metadata with it."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Save a profile on your node: rules from --rule options or a JSON --file."""
    body: dict[str, Any] = {"name": name, "rules": []}
    if file is not None:
        try:
            loaded = json.loads(file.read_text())
        except (OSError, ValueError) as exc:
            raise typer.BadParameter(f"{file}: {exc}") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter(f"{file}: a profile is a JSON object")
        body.update({k: v for k, v in loaded.items() if k != "name"})
    try:
        body["rules"] = list(body.get("rules") or []) + [
            {"field": r.field, "action": r.action, "arg": r.arg}
            for r in (rules.parse_rule(text) for text in rule)
        ]
    except rules.RuleInvalid as exc:
        raise typer.BadParameter(str(exc)) from None
    if description is not None:
        body["description"] = description
    if images:
        body["image"] = {"keep_icc": True}
    with signed_client(url, identity) as node:
        saved = node.request("POST", "/qmask/profiles", json=body)
    if as_json:
        emit_json(saved)
    else:
        console.print(f"saved {saved['name']} version {saved['version']}")


@profile_app.command("show")
def profile_show(
    name: str = typer.Argument(...),
    version: int | None = typer.Option(None, "--version", min=1, help="[default: the latest]"),
    owner: str | None = typer.Option(None, "--owner", help="Another identity's DID."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A profile's rules (yours, a built-in, or one shared with you)."""
    params: dict[str, Any] = {}
    if version:
        params["version"] = version
    if owner:
        params["owner"] = owner
    with signed_client(url, identity) as node:
        found = node.request("GET", f"/qmask/profiles/{name}", params=params)
    if as_json:
        emit_json(found)
        return
    who = "built-in" if found["builtin"] else found["owner"]
    console.print(
        f"{found['name']} v{found['version']} of {found['latest_version']} ({who})"
        + (f": {found['description']}" if found["description"] else "")
    )
    emit_table(found["rules"], ["field", "action", "arg"], title="rules")
    if found["image"] is not None:
        keep = "kept" if found["image"]["keep_icc"] else "removed"
        console.print(f"images: metadata stripped, colour profile {keep}")


@profile_app.command("ls")
def profile_ls(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your profiles and the node's built-ins."""
    with signed_client(url, identity) as node:
        found = node.request("GET", "/qmask/profiles")
    if as_json:
        emit_json(found)
    else:
        emit_table(found, ["name", "version", "builtin", "rules", "description"], title="profiles")


@app.command("apply")
def apply(
    profile: str = typer.Argument(..., help="Profile name."),
    source: str = typer.Argument("-", help="A JSON file of one record or a list ('-': stdin)."),
    version: int | None = typer.Option(None, "--version", min=1),
    owner: str | None = typer.Option(None, "--owner", help="Whose profile [default: yours]."),
    output: Path | None = typer.Option(None, "-o", "--output", help="[default: stdout]"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Mask JSON records with a profile, on your node (pseudonyms and sealing are yours)."""
    try:
        loaded = json.loads(sys.stdin.read() if source == "-" else Path(source).read_text())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{source}: {exc}") from None
    single = not isinstance(loaded, list)
    body: dict[str, Any] = {"profile": profile, "records": [loaded] if single else loaded}
    if version:
        body["version"] = version
    if owner:
        body["owner"] = owner
    with signed_client(url, identity) as node:
        applied = node.request("POST", "/qmask/apply", json=body)
    masked = applied["records"][0] if single else applied["records"]
    text = json.dumps(masked, indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)


# Text ------------------------------------------------------------------------------------


@app.command("detect")
def detect(
    text: str | None = typer.Argument(None, help="The text ('-' or nothing: stdin)."),
    types: list[str] | None = TYPES_OPTION,
    regions: str = REGIONS_OPTION,
    on_node: bool = ON_NODE_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Find personal data in a text: type, span, score. Runs here; needs no node."""
    content = _text(text)
    if on_node:
        body = {"text": content, "types": types or None, "regions": _regions(regions)}
        with signed_client(url, identity) as node:
            found = node.request("POST", "/qmask/detect", json=body)["entities"]
    else:
        try:
            entities = pii.detect(content, types=types or None, regions=_regions(regions))
        except ValueError as exc:
            raise _fail(str(exc)) from None
        found = [e.__dict__ for e in entities]
    if as_json:
        emit_json(found)
    else:
        emit_table(found, ENTITY_COLUMNS, title="personal data")


@app.command("redact")
def redact(
    text: str | None = typer.Argument(None, help="The text ('-' or nothing: stdin)."),
    mode: str = typer.Option("mask", help="mask ([EMAIL]), partial (a***@x.org) or hash."),
    hash_key: str | None = typer.Option(
        None,
        "--hash-key",
        envvar="ANARQ_MASK_HASH_KEY",
        help="Hex key for --mode hash here [default: a new random key each run]; "
        "with --on-node your node's key for you is used.",
    ),
    types: list[str] | None = TYPES_OPTION,
    regions: str = REGIONS_OPTION,
    on_node: bool = ON_NODE_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace personal data in a text. Runs here; needs no node."""
    content = _text(text)
    if on_node:
        body = {"text": content, "mode": mode, "types": types or None, "regions": _regions(regions)}
        with signed_client(url, identity) as node:
            result = node.request("POST", "/qmask/redact", json=body)
    else:
        try:
            key = bytes.fromhex(hash_key) if hash_key else secrets.token_bytes(32)
            if mode not in pii.MODES:
                raise ValueError(f"unknown mode {mode!r}; modes are {', '.join(pii.MODES)}")
            done = pii.redact(
                content,
                mode=cast(pii.Mode, mode),
                key=key,
                types=types or None,
                regions=_regions(regions),
            )
        except ValueError as exc:
            raise _fail(str(exc)) from None
        result = {"text": done.text, "entities": [e.__dict__ for e in done.entities]}
    if as_json:
        emit_json(result)
    else:
        typer.echo(result["text"], nl=not result["text"].endswith("\n"))


# Images ----------------------------------------------------------------------------------


@app.command("strip")
def strip(
    source: Path = typer.Argument(..., help="A JPEG, PNG, WebP or GIF image."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the clean image."),
    drop_icc: bool = typer.Option(False, "--drop-icc", help="Remove the colour profile too."),
    on_node: bool = ON_NODE_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Remove EXIF (with GPS), XMP, IPTC and comments; turn the picture upright. Runs here."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(f"{source}: {exc}") from None
    if on_node:
        with (
            signed_client(url, identity) as node,
            node.stream(
                "POST",
                "/qmask/image/strip",
                content=data,
                params={"keep_icc": str(not drop_icc).lower()},
                headers={"Content-Type": "application/octet-stream"},
            ) as response,
        ):
            clean = response.read()
            removed_header = response.headers.get("x-anarq-removed", "none")
            orientation = int(response.headers.get("x-anarq-orientation", "1"))
        removed = [] if removed_header == "none" else removed_header.split(",")
    else:
        try:
            stripped = image.strip_image(data, keep_icc=not drop_icc)
        except AnarqError as exc:
            raise _fail(f"{source}: {exc.detail}") from None
        clean, removed, orientation = (
            stripped.data,
            list(stripped.removed),
            stripped.orientation or 1,
        )
    output.write_bytes(clean)
    report = {
        "output": str(output),
        "bytes": len(clean),
        "removed": removed,
        "orientation": orientation,
    }
    if as_json:
        emit_json(report)
    else:
        turned = f", turned upright (orientation {orientation})" if orientation != 1 else ""
        console.print(f"wrote {output}: removed {', '.join(removed) or 'nothing'}{turned}")


# Tables ----------------------------------------------------------------------------------


@app.command("anonymize")
def anonymize(
    source: Path = typer.Argument(..., help="A CSV file with a header row."),
    qi: str = typer.Option(..., "--qi", help="Quasi-identifier columns, comma-separated."),
    k: int = typer.Option(..., "--k", min=2, help="Every kept row shares its QIs with k-1 others."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the anonymized CSV."),
    max_suppression: float = typer.Option(
        0.05, min=0, max=1, help="Share of rows that may be left out."
    ),
    drop: str = typer.Option(
        "", help="Columns to leave out (direct identifiers), comma-separated."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """k-anonymize a CSV by generalizing and suppressing; report k and the risk. Runs here."""
    dropped = [c.strip() for c in drop.split(",") if c.strip()]
    try:
        columns, rows = kanon.read_csv(source.read_text())
        done = kanon.anonymize(
            rows,
            [c.strip() for c in qi.split(",") if c.strip()],
            k,
            max_suppression=max_suppression,
            drop=dropped,
        )
    except (OSError, UnicodeDecodeError, kanon.AnonymizationInvalid) as exc:
        raise _fail(f"{source}: {exc}") from None
    output.write_text(kanon.write_csv([c for c in columns if c not in dropped], done.rows))
    report = {
        "output": str(output),
        "k": done.k,
        "k_achieved": done.k_achieved,
        "kept": len(done.rows),
        "suppressed": done.suppressed,
        "classes": done.classes,
        "generalization": done.generalization,
        "risk": done.risk.__dict__,
        "risk_before": done.risk_before.__dict__,
    }
    if as_json:
        emit_json(report)
        return
    console.print(
        f"wrote {output}: {len(done.rows)} rows kept, {done.suppressed} suppressed, "
        f"k = {done.k_achieved} (asked {k})"
    )
    console.print(
        "generalized: " + ", ".join(f"{c} → {how}" for c, how in done.generalization.items())
    )
    console.print(
        f"re-identification risk: highest {done.risk.highest:.3f}, average "
        f"{done.risk.average:.3f} (before: {done.risk_before.highest:.3f}, "
        f"{done.risk_before.average:.3f})"
    )
