"""`anarq oidc …`: register applications that sign people in with their sQuid, approve a
sign-in from the terminal, and see or withdraw the consents you gave."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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
from anarq.qwallet.cli import IDENTITY_OPTION
from anarq.sdk import Client
from anarq.squid.cli import acting_client, signed_client

app = typer.Typer(no_args_is_help=True)
clients_app = typer.Typer(no_args_is_help=True, help="Applications that sign people in here.")
keys_app = typer.Typer(no_args_is_help=True, help="The provider's signing keys (operator).")
app.add_typer(clients_app, name="client")
app.add_typer(keys_app, name="keys")

OPERATOR_OPTION = typer.Option(False, "--operator", help="Act with the operator token.")


@clients_app.command("add")
def client_add(
    name: str = typer.Option(..., "--name", help="Shown to people on the consent screen."),
    redirect_uri: list[str] = typer.Option(
        ..., "--redirect-uri", help="Where codes are sent (exact match; repeatable)."
    ),
    public: bool = typer.Option(
        False, "--public", help="A public client (single-page or native app): PKCE, no secret."
    ),
    secret_post: bool = typer.Option(
        False, "--secret-post", help="The secret goes in the token request's body, not Basic."
    ),
    alg: str = typer.Option("EdDSA", "--alg", help="ID token algorithm: EdDSA, Ed25519, RS256."),
    scope: list[str] = typer.Option(
        [], "--scope", help="Scopes it may ask for [default: openid profile did offline_access]."
    ),
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an application; prints its client id and (once) its secret."""
    method = "none" if public else "client_secret_post" if secret_post else "client_secret_basic"
    body: dict[str, Any] = {
        "name": name,
        "redirect_uris": redirect_uri,
        "auth_method": method,
        "id_token_alg": alg,
    }
    if scope:
        body["scopes"] = scope
    with acting_client(url, identity, operator, token) as node:
        made: dict[str, Any] = node.request("POST", "/oidc/clients", json=body)
        issuer = node.request("GET", "/.well-known/openid-configuration")["issuer"]
    if as_json:
        emit_json(made)
        return
    emit_fields(
        {
            "client_id": made["client_id"],
            "client_secret": made["client_secret"] or "(public client: none)",
            "issuer": issuer,
            "redirect_uris": " ".join(made["redirect_uris"]),
            "id_token_alg": made["id_token_alg"],
        }
    )
    if made["client_secret"]:
        console.print("[yellow]The secret is shown only now; keep it with the application.[/]")


@clients_app.command("ls")
def client_ls(
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Your applications (every one, with --operator)."""
    with acting_client(url, identity, operator, token) as node:
        found: list[dict[str, Any]] = node.request("GET", "/oidc/clients")
    if as_json:
        emit_json(found)
        return
    emit_table(found, ["client_id", "name", "auth_method", "id_token_alg"], title="clients")


@clients_app.command("show")
def client_show(
    client_id: str = typer.Argument(...),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """One application."""
    with signed_client(url, identity) as node:
        found: dict[str, Any] = node.request("GET", f"/oidc/clients/{client_id}")
    emit_json(found) if as_json else emit_fields(found)


@clients_app.command("rm")
def client_rm(
    client_id: str = typer.Argument(...),
    operator: bool = OPERATOR_OPTION,
    token: str | None = TOKEN_OPTION,
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Remove an application: its codes and tokens stop working."""
    with acting_client(url, identity, operator, token) as node:
        node.request("DELETE", f"/oidc/clients/{client_id}")
    console.print(f"removed {client_id}")


@app.command("authorize")
def authorize(
    authorization_url: str = typer.Argument(..., help="The URL the application sent you to."),
    as_identity: str | None = typer.Option(
        None, "--as", help="Sign in as one of your sub-identities (its DID)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Approve without asking."),
    deny: bool = typer.Option(False, "--deny", help="Refuse the sign-in."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Sign in to an application from the terminal: show what it asks for, approve or
    refuse, and print the address to return to (with the code, or the refusal)."""
    parts = urlsplit(authorization_url)
    if not parts.path.endswith("/oidc/authorize"):
        raise typer.BadParameter("that is not this provider's /oidc/authorize address")
    with signed_client(url, identity) as node:
        outcome: dict[str, Any] = node.request("GET", f"/oidc/authorize?{parts.query}")
        if "redirect_to" not in outcome:
            if not as_json:
                console.print(
                    f"[bold]{outcome['client_name']}[/bold] ({outcome['client_id']}) asks to "
                    f"sign you in and to see: {', '.join(outcome['claims'])}"
                )
            approve = not deny and (yes or typer.confirm("Approve?", default=False))
            body: dict[str, Any] = {"request_id": outcome["request_id"], "approve": approve}
            if as_identity:
                body["identity"] = as_identity
            outcome = node.request("POST", "/oidc/authorize/consent", json=body)
    if as_json:
        emit_json(outcome)
        return
    console.print(outcome["redirect_to"], soft_wrap=True, highlight=False)


@app.command("consents")
def consents(
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """The applications you (and your sub-identities) signed in to."""
    with signed_client(url, identity) as node:
        found: list[dict[str, Any]] = node.request("GET", "/oidc/consents")
    if as_json:
        emit_json(found)
        return
    emit_table(
        found, ["client_id", "client_name", "subject", "scopes", "created_at"], title="consents"
    )


@app.command("withdraw")
def withdraw(
    client_id: str = typer.Argument(...),
    as_identity: str | None = typer.Option(None, "--as", help="For this sub-identity of yours."),
    identity: str | None = IDENTITY_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Withdraw a consent: the application's tokens for you stop working now."""
    params = {"identity": as_identity} if as_identity else {}
    with signed_client(url, identity) as node:
        node.request("DELETE", f"/oidc/consents/{client_id}", params=params)
    console.print(f"consent for {client_id} withdrawn")


@keys_app.command("ls")
def keys_ls(url: str | None = URL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """The published signing keys (the JWKS)."""
    with Client(url) if url else client(url, None) as node:
        found: dict[str, Any] = node.request("GET", "/oidc/jwks")
    if as_json:
        emit_json(found)
        return
    emit_table(found["keys"], ["kid", "kty", "alg", "crv"], title="signing keys")


@keys_app.command("rotate")
def keys_rotate(
    token: str | None = TOKEN_OPTION, url: str | None = URL_OPTION, as_json: bool = JSON_OPTION
) -> None:
    """Retire the signing keys and make new ones (old tokens still verify for two days)."""
    with client(url, token, need_token=True) as node:
        made: dict[str, Any] = node.request("POST", "/oidc/keys/rotate")
    emit_json(made) if as_json else console.print("new keys: " + ", ".join(made["kids"]))
