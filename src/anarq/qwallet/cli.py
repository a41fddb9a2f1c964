"""`anarq wallet …`: balances, payments, history and statements, assets and unique tokens.

Amounts are typed as people write them (`1.5`) and turned into the asset's smallest unit
here, exactly (never through floating point): an amount finer than the asset's decimals
is refused rather than rounded.
"""

from __future__ import annotations

import csv
import json
import secrets
import sys
from decimal import Decimal, InvalidOperation
from typing import Any

import typer

from anarq.cli.output import (
    JSON_OPTION,
    TOKEN_OPTION,
    URL_OPTION,
    client,
    console,
    emit_fields,
    emit_json,
    emit_table,
)
from anarq.sdk import Client
from anarq.squid.cli import acting_client, signed_client

app = typer.Typer(no_args_is_help=True)
nft_app = typer.Typer(no_args_is_help=True, help="Unique tokens: mint, send, show provenance.")
app.add_typer(nft_app, name="nft")

IDENTITY_OPTION = typer.Option(
    None, "--as", envvar="ANARQ_IDENTITY", help="Identity to act as [default: the active one]."
)
OPERATOR_OPTION = typer.Option(
    False, "--operator", help="Act as the node (its operator token) instead of an identity."
)
ASSET_OPTION = typer.Option("PI", "--asset", help="Asset code (QTOKEN, PI, or an issued one).")
STATEMENT_PAGE = 500


def asset_scale(node: Client, asset: str) -> int:
    info: dict[str, Any] = node.request("GET", f"/qwallet/assets/{asset}")
    return int(info["scale"])


def to_units(amount: str, scale: int) -> int:
    """`1.5` of an asset with `scale` decimals, in its smallest unit, exactly."""
    try:
        value = Decimal(amount)
    except InvalidOperation:
        raise typer.BadParameter(f"{amount!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise typer.BadParameter("the amount must be above 0")
    units = value.scaleb(scale)
    if units != units.to_integral_value():
        raise typer.BadParameter(f"{amount} has more than {scale} decimals")
    return int(units)


def from_units(units: int | str | None, scale: int) -> str:
    if units is None:
        return ""
    value = Decimal(int(units)).scaleb(-scale)
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _new_id() -> str:
    return secrets.token_hex(16)


@app.command("balance")
def balance(
    asset: str | None = typer.Option(None, "--asset", help="Only this asset."),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your accounts and what is available in each (posted credits less debits and holds)."""
    with acting_client(url, identity, operator, token) as node:
        params = {"asset": asset} if asset else {}
        accounts: list[dict[str, Any]] = node.request("GET", "/qwallet/accounts", params=params)
        scales = {a: asset_scale(node, a) for a in {acc["asset"] for acc in accounts}}
    if as_json:
        emit_json(accounts)
        return
    rows = [
        {
            "account": a["id"],
            "asset": a["asset"],
            "name": a["name"],
            "available": from_units(a["balance"], scales[a["asset"]]),
            "on_hold": from_units(int(a["debits_pending"]), scales[a["asset"]]),
            "incoming": from_units(int(a["credits_pending"]), scales[a["asset"]]),
        }
        for a in accounts
    ]
    emit_table(
        rows, ["account", "asset", "name", "available", "on_hold", "incoming"], title="accounts"
    )


@app.command("receive")
def receive(
    asset: str = ASSET_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Open your account of an asset (if needed) and show what a payer needs: your DID."""
    with signed_client(url, identity) as node:
        account = node.request("POST", "/qwallet/accounts", json={"asset": asset})
        did = node.signer.did if node.signer else ""
    if as_json:
        emit_json({"did": did, "asset": asset, "account": account["id"]})
        return
    emit_fields({"pay to": did, "asset": asset, "account": account["id"]})
    console.print(f"[dim]anarq wallet send --to {did} --asset {asset} --amount …[/dim]")


@app.command("send")
def send(
    to: str = typer.Option(..., "--to", help="The payee's DID."),
    amount: str = typer.Option(..., "--amount", help="How much, e.g. 1.5"),
    asset: str = ASSET_OPTION,
    memo: str | None = typer.Option(None, "--memo", help="A note the payee sees (≤140)."),
    hold: bool = typer.Option(False, "--hold", help="Hold it pending until you post it."),
    timeout: int = typer.Option(0, "--timeout", help="With --hold: void after this many s."),
    transfer_id: str | None = typer.Option(
        None, "--id", help="Your id for it; resending the same id pays once [default: new]."
    ),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Pay an identity. The payee's account opens on first payment; a fee, if the asset
    has one, is paid by the payee."""
    with acting_client(url, identity, operator, token) as node:
        scale = asset_scale(node, asset)
        body = {
            "id": transfer_id or _new_id(),
            "to": to,
            "asset": asset,
            "amount": str(to_units(amount, scale)),
            "memo": memo,
            "pending": hold,
            "timeout": timeout,
        }
        made = node.request("POST", "/qwallet/pay", json=body)
    if as_json:
        emit_json(made)
        return
    state = " (on hold)" if made.get("pending_state") == "pending" else ""
    again = " — already paid, nothing changed" if made["result"] == "exists" else ""
    console.print(f"sent {from_units(made['amount'], scale)} {asset} to {to}{state}{again}")
    console.print(f"[dim]transfer {made['id']}[/dim]")


@app.command("post")
def post(
    pending_id: str = typer.Argument(..., help="The pending transfer's id."),
    amount: str | None = typer.Option(None, "--amount", help="Post part of it [default: all]."),
    asset: str = ASSET_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Complete a payment on hold (all of it, or part: the rest goes back)."""
    with signed_client(url, identity) as node:
        body: dict[str, Any] = {
            "id": _new_id(),
            "pending_id": pending_id,
            "flags": ["post_pending_transfer"],
        }
        if amount is not None:
            body["amount"] = str(to_units(amount, asset_scale(node, asset)))
        made = node.request("POST", "/qwallet/transfers", json=body)
    emit_json(made) if as_json else console.print(f"posted {pending_id} as {made['id']}")


@app.command("void")
def void(
    pending_id: str = typer.Argument(..., help="The pending transfer's id."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Cancel a payment on hold: the amount goes back to the payer."""
    with signed_client(url, identity) as node:
        body = {"id": _new_id(), "pending_id": pending_id, "flags": ["void_pending_transfer"]}
        made = node.request("POST", "/qwallet/transfers", json=body)
    emit_json(made) if as_json else console.print(f"voided {pending_id}")


def _history(node: Client, account: int, before: int | None, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if before is not None:
        params["before"] = before
    page: dict[str, Any] = node.request(
        "GET", f"/qwallet/accounts/{account}/transfers", params=params
    )
    return page


def _account(node: Client, asset: str) -> dict[str, Any]:
    accounts: list[dict[str, Any]] = node.request(
        "GET", "/qwallet/accounts", params={"asset": asset}
    )
    main = [a for a in accounts if a["name"] == "main"] or accounts
    if not main:
        raise typer.BadParameter(f"you hold no {asset} account (anarq wallet receive --asset …)")
    return main[0]


@app.command("history")
def history(
    asset: str = ASSET_OPTION,
    limit: int = typer.Option(20, "--limit", min=1, max=500),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your latest transfers in an asset, newest first."""
    with acting_client(url, identity, operator, token) as node:
        account = _account(node, asset)
        page = _history(node, account["id"], None, limit)
        scale = asset_scale(node, asset)
    if as_json:
        emit_json(page)
        return
    rows = [_statement_row(t, account["id"], scale) for t in page["transfers"]]
    emit_table(rows, ["time", "id", "direction", "amount", "counterparty", "state", "memo"])


def _statement_row(t: dict[str, Any], account: int, scale: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    outgoing = t["debit_account"] == account
    return {
        "time": datetime.fromtimestamp(t["timestamp"] / 1e9, UTC).isoformat(timespec="seconds"),
        "id": t["id"],
        "direction": "out" if outgoing else "in",
        "amount": ("-" if outgoing else "") + from_units(t["amount"], scale),
        "counterparty": t["credit_account"] if outgoing else t["debit_account"],
        "state": _state(t),
        "memo": t["memo"] or "",
    }


def _state(t: dict[str, Any]) -> str:
    flags = t["flags"]
    if "pending" in flags:
        return "hold"
    if "post_pending_transfer" in flags:
        return "posted"
    if "void_pending_transfer" in flags:
        return "voided"
    return "posted"


@app.command("statement")
def statement(
    asset: str = ASSET_OPTION,
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout (every transfer)."),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Every transfer of your account in an asset, oldest last; `--csv` for spreadsheets."""
    columns = ["time", "id", "direction", "amount", "counterparty", "state", "memo"]
    with acting_client(url, identity, operator, token) as node:
        account = _account(node, asset)
        scale = asset_scale(node, asset)
        rows: list[dict[str, Any]] = []
        before = None
        while True:
            page = _history(node, account["id"], before, STATEMENT_PAGE)
            rows.extend(_statement_row(t, account["id"], scale) for t in page["transfers"])
            before = page["next_before"]
            if before is None:
                break
    if as_csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    emit_table(rows, columns, title=f"{asset} statement")


@app.command("assets")
def assets(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The assets on this node, with their supply and fees."""
    with client(url) as node:
        found: list[dict[str, Any]] = node.request("GET", "/qwallet/assets")
    if as_json:
        emit_json(found)
        return
    rows = [
        {
            **a,
            "supply": from_units(a["supply"], a["scale"]),
            "cap": from_units(a["supply_cap"], a["scale"]) if a["supply_cap"] else "none",
            "fee": f"{a['fee_bps'] / 100:g} %",
        }
        for a in found
    ]
    emit_table(rows, ["code", "name", "scale", "supply", "cap", "fee", "issuer"], title="assets")


@app.command("issue")
def issue(
    code: str = typer.Argument(..., help="The asset's code, e.g. GOLD (A-Z, 0-9)."),
    name: str = typer.Option(..., "--name"),
    scale: int = typer.Option(2, "--scale", min=0, max=18, help="Decimals."),
    cap: str | None = typer.Option(None, "--cap", help="Most that may ever be in circulation."),
    fee_bps: int = typer.Option(0, "--fee-bps", min=0, max=10000, help="Fee in 1/100 %."),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Issue a new asset: you are its issuer, the only one who mints and burns it."""
    body: dict[str, Any] = {"code": code, "name": name, "scale": scale, "fee_bps": fee_bps}
    if cap is not None:
        body["supply_cap"] = str(to_units(cap, scale))
    with acting_client(url, identity, operator, token) as node:
        made = node.request("POST", "/qwallet/assets", json=body)
    emit_json(made) if as_json else console.print(f"issued {code} ({name})")


@app.command("mint")
def mint(
    to: str = typer.Option(..., "--to", help="Who receives the new units (DID)."),
    amount: str = typer.Option(..., "--amount"),
    asset: str = ASSET_OPTION,
    transfer_id: str | None = typer.Option(None, "--id", help="Your id for it."),
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mint new units of an asset you issued (the node's QTOKEN and PI: `--operator`)."""
    with acting_client(url, identity, operator, token) as node:
        scale = asset_scale(node, asset)
        body = {"id": transfer_id or _new_id(), "to": to, "amount": str(to_units(amount, scale))}
        made = node.request("POST", f"/qwallet/assets/{asset}/mint", json=body)
    emit_json(made) if as_json else console.print(f"minted {amount} {asset} to {to}")


@app.command("burn")
def burn(
    amount: str = typer.Option(..., "--amount"),
    asset: str = ASSET_OPTION,
    identity: str | None = IDENTITY_OPTION,
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Take units of an asset you issued out of circulation, from your own account."""
    with acting_client(url, identity, operator, token) as node:
        scale = asset_scale(node, asset)
        body = {"id": _new_id(), "amount": str(to_units(amount, scale))}
        made = node.request("POST", f"/qwallet/assets/{asset}/burn", json=body)
    emit_json(made) if as_json else console.print(f"burnt {amount} {asset}")


@app.command("verify")
def verify(
    token: str | None = TOKEN_OPTION, url: str | None = URL_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Check the whole ledger against its transfer log (operator); exit 1 on a problem."""
    with client(url, token, need_token=True) as node:
        report: dict[str, Any] = node.request("GET", "/qwallet/books")
    if as_json:
        emit_json(report)
    else:
        verdict = "balanced" if report["ok"] else "PROBLEMS FOUND"
        console.print(f"{report['accounts']} accounts, {report['transfers']} transfers: {verdict}")
        for problem in report["problems"]:
            console.print(f"  {problem}")
    if not report["ok"]:
        raise typer.Exit(1)


@nft_app.command("mint")
def nft_mint(
    name: str = typer.Option(..., "--name"),
    to: str | None = typer.Option(None, "--to", help="Give it to (DID) [default: you]."),
    metadata: str = typer.Option("{}", "--metadata", help='JSON, e.g. {"cid": "bafy…"}'),
    royalty_bps: int = typer.Option(
        0,
        "--royalty-bps",
        min=0,
        max=5000,
        help="Your share of every resale through Qmarket, in basis points (250 = 2.5 %).",
    ),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Mint a unique token; its provenance starts with you."""
    try:
        fields = json.loads(metadata)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"--metadata is not JSON: {exc}") from None
    body = {"name": name, "to": to, "metadata": fields, "royalty_bps": royalty_bps}
    with signed_client(url, identity) as node:
        made = node.request("POST", "/qwallet/nfts", json=body)
    emit_json(made) if as_json else console.print(f"minted token {made['id']} ({name})")


@nft_app.command("send")
def nft_send(
    nft_id: str = typer.Argument(...),
    to: str = typer.Option(..., "--to"),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Give a token you hold to someone."""
    with signed_client(url, identity) as node:
        made = node.request("POST", f"/qwallet/nfts/{nft_id}/send", json={"to": to})
    emit_json(made) if as_json else console.print(f"sent token {nft_id} to {to}")


@nft_app.command("ls")
def nft_ls(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The tokens you hold."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request("GET", "/qwallet/nfts")
    emit_json(found) if as_json else emit_table(found, ["id", "name", "issuer"], title="tokens")


@nft_app.command("show")
def nft_show(
    nft_id: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """A token and every change of hands since it was minted."""
    with signed_client(url, identity) as node:
        made: dict[str, Any] = node.request("GET", f"/qwallet/nfts/{nft_id}")
    if as_json:
        emit_json(made)
        return
    emit_fields({k: made[k] for k in ("id", "name", "issuer", "owner", "metadata")})
    emit_table(made["provenance"], ["seq", "kind", "from_did", "to_did", "at"], title="provenance")
