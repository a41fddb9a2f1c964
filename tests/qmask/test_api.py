"""Qmask through the HTTP API, on both backends, as signed identities."""

from __future__ import annotations

import base64
import io
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select

from anarq.kernel.node import Node
from anarq.kernel.tables import outbox
from anarq.qlock import open_sealed
from anarq.qmask import tables
from tests.qdrive.test_drive import Person
from tests.qmask.test_image import jpeg_with_everything

PROBLEM = "application/problem+json"
RULES = [
    {"field": "email", "action": "pseudonym"},
    {"field": "age", "action": "generalize", "arg": "10"},
]


@pytest.fixture
async def alice(http: httpx.AsyncClient) -> Person:
    return await Person(http, "alice").register()


@pytest.fixture
async def bob(http: httpx.AsyncClient) -> Person:
    return await Person(http, "bob").register()


async def save(person: Person, name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    response = await person.send("POST", "/qmask/profiles", json={"name": name, "rules": rules})
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def apply(person: Person, profile: str, *records: Any, **extra: Any) -> httpx.Response:
    return await person.send(
        "POST", "/qmask/apply", json={"profile": profile, "records": list(records), **extra}
    )


def profile_rows(node: Node) -> int:
    with node.kernel.db.read() as conn:
        return int(
            conn.execute(select(func.count()).select_from(tables.profile_versions)).scalar_one()
        )


def assert_problem(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    if code is not None:
        assert response.json()["code"] == code


# Profiles ------------------------------------------------------------------------------


async def test_saving_a_taken_name_adds_a_version(node: Node, alice: Person) -> None:
    first = await save(alice, "export", RULES)
    second = await save(alice, "export", [{"field": "email", "action": "remove"}])
    assert (first["version"], second["version"]) == (1, 2)
    assert first["id"] == second["id"] and second["owner"] == alice.did

    latest = (await alice.send("GET", "/qmask/profiles/export")).json()
    assert latest["version"] == latest["latest_version"] == 2
    assert latest["rules"] == [{"field": "email", "action": "remove", "arg": None}]
    old = (await alice.send("GET", "/qmask/profiles/export", params={"version": 1})).json()
    assert [r["action"] for r in old["rules"]] == ["pseudonym", "generalize"]
    masked = (await apply(alice, "export", {"email": "a@example.org", "age": 34}, version=1)).json()
    assert masked["version"] == 1 and masked["records"][0]["age"] == "30-39"

    listed = (await alice.send("GET", "/qmask/profiles")).json()
    assert [(p["name"], p["builtin"], p["version"]) for p in listed] == [
        ("export", False, 2),
        ("default", True, 1),
        ("share-minimal", True, 1),
    ]
    with node.kernel.db.read() as conn:
        events = conn.execute(select(outbox.c.type).where(outbox.c.type.like("qmask.%"))).all()
    assert len(events) == 2


async def test_another_identity_needs_a_grant_to_read_or_apply_my_profile(
    alice: Person, bob: Person
) -> None:
    mine = await save(alice, "export", RULES)
    record = {"email": "ana@example.org", "age": 41}
    own = {"owner": alice.did}
    refused = await bob.send("GET", "/qmask/profiles/export", params=own)
    assert_problem(refused, 403, "auth.forbidden")
    assert_problem(await apply(bob, "export", record, **own), 403, "auth.forbidden")
    # Without an owner, bob's own namespace is searched: he has no such profile.
    assert_problem(await apply(bob, "export", record), 404, "not_found")

    granted = await alice.send(
        "POST",
        "/qonsent/grants",
        json={
            "grantee": bob.did,
            "resource": f"qmask:profile:{mine['id']}",
            "actions": ["read"],
            "purpose": "mask exports the same way",
        },
    )
    assert granted.status_code == 201, granted.text
    assert (await bob.send("GET", "/qmask/profiles/export", params=own)).status_code == 200
    bobs = (await apply(bob, "export", record, **own)).json()["records"][0]
    alices = (await apply(alice, "export", record)).json()["records"][0]
    # The rules are alice's; the pseudonym key is the data owner's (the caller's).
    assert bobs["age"] == alices["age"] == "40-49"
    assert bobs["email"] != alices["email"]
    assert alices == (await apply(alice, "export", record)).json()["records"][0]


async def test_builtin_profiles_serve_everyone(alice: Person) -> None:
    record = {
        "name": "Ana",
        "email": "ana@example.org",
        "phone": "+44 20 7946 0958",
        "birth_date": "1985-03-14",
        "notes": "call me on +44 20 7946 0958",
        "kept": True,
    }
    masked = (await apply(alice, "share-minimal", record)).json()
    assert masked["owner"] is None
    out = masked["records"][0]
    assert "phone" not in out and out["birth_date"] == "1985" and out["kept"] is True
    assert out["notes"] == "call me on [PHONE]" and out["email"].startswith("pn_")
    shown = (await alice.send("GET", "/qmask/profiles/default")).json()
    assert shown["builtin"] and shown["image"] == {"keep_icc": True}


async def test_encrypt_seals_the_value_to_the_caller(alice: Person) -> None:
    await save(alice, "vault", [{"field": "iban", "action": "encrypt"}])
    out = (await apply(alice, "vault", {"iban": "DE89370400440532013000"})).json()
    envelope = base64.b64decode(out["records"][0]["iban"])
    opened = open_sealed(envelope, alice.signer.key.derive_agreement_key())
    assert opened == b'"DE89370400440532013000"'


async def test_bad_profiles_are_refused_and_change_nothing(node: Node, alice: Person) -> None:
    for body, status in [
        ({"name": "x", "rules": [{"field": "a..b", "action": "remove"}]}, 400),
        ({"name": "x", "rules": [{"field": "age", "action": "generalize", "arg": "-3"}]}, 400),
        ({"name": "x", "rules": [{"field": "a", "action": "shred"}]}, 422),
        ({"name": "Bad Name", "rules": []}, 422),
        ({"name": "default", "rules": []}, 409),
    ]:
        assert_problem(await alice.send("POST", "/qmask/profiles", json=body), status)
    assert profile_rows(node) == 0
    assert_problem(await alice.send("GET", "/qmask/profiles/none-such"), 404, "not_found")
    missing = await alice.send("GET", "/qmask/profiles/default", params={"version": 2})
    assert_problem(missing, 404)


async def test_anonymous_callers_are_refused(http: httpx.AsyncClient) -> None:
    for path, body in [
        ("/qmask/profiles", {"name": "x", "rules": []}),
        ("/qmask/detect", {"text": "ana@example.org"}),
    ]:
        assert_problem(await http.post(path, json=body), 401, "auth.required")


# Text ----------------------------------------------------------------------------------


async def test_detect_and_redact(alice: Person, bob: Person) -> None:
    text = "Mail ana@example.org, card 4111 1111 1111 1111."
    found = (await alice.send("POST", "/qmask/detect", json={"text": text})).json()
    assert [(e["type"], e["start"], e["end"]) for e in found["entities"]] == [
        ("EMAIL", 5, 20),
        ("CREDIT_CARD", 27, 46),
    ]
    redacted = (await alice.send("POST", "/qmask/redact", json={"text": text})).json()
    assert redacted["text"] == "Mail [EMAIL], card [CREDIT_CARD]."
    hashed = {"text": "ana@example.org", "mode": "hash"}
    mine = (await alice.send("POST", "/qmask/redact", json=hashed)).json()["text"]
    again = (await alice.send("POST", "/qmask/redact", json=hashed)).json()["text"]
    theirs = (await bob.send("POST", "/qmask/redact", json=hashed)).json()["text"]
    assert mine == again != theirs and mine.startswith("[EMAIL:")
    bad = await alice.send("POST", "/qmask/detect", json={"text": "x", "regions": ["usa"]})
    assert_problem(bad, 422, "request.validation")


# Images --------------------------------------------------------------------------------


async def test_strip_returns_a_clean_upright_image(alice: Person) -> None:
    response = await alice.send(
        "POST",
        "/qmask/image/strip",
        content=jpeg_with_everything(),
        headers={"Content-Type": "image/jpeg"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-anarq-removed"] == "exif,gps,xmp,comment"
    clean = Image.open(io.BytesIO(response.content))
    assert len(clean.getexif()) == 0 and clean.size == (20, 40)

    by_profile = await alice.send(
        "POST", "/qmask/image/strip", params={"profile": "default"}, content=response.content
    )
    assert by_profile.headers["x-anarq-removed"] == "none"
    no_images = await alice.send(
        "POST", "/qmask/image/strip", params={"profile": "share-minimal"}, content=b"x"
    )
    assert no_images.status_code in (400, 415)


async def test_strip_refuses_what_is_not_an_image(alice: Person) -> None:
    response = await alice.send("POST", "/qmask/image/strip", content=b"hello, not an image")
    assert_problem(response, 415, "qmask.not_an_image")
    truncated = await alice.send("POST", "/qmask/image/strip", content=jpeg_with_everything()[:300])
    assert_problem(truncated, 400, "qmask.image_invalid")


# Tables --------------------------------------------------------------------------------


async def test_anonymize_rows_and_csv(alice: Person) -> None:
    rows = [{"age": 20 + i % 30, "zip": f"750{i % 20:02d}", "sick": i % 2} for i in range(200)]
    body = {"rows": rows, "quasi_identifiers": ["age", "zip"], "k": 5}
    done = (await alice.send("POST", "/qmask/anonymize", json=body)).json()
    assert done["k_achieved"] >= 5 and done["risk"]["highest"] <= 0.2
    assert done["risk_before"]["highest"] >= done["risk"]["highest"]
    assert len(done["rows"]) + done["suppressed"] == 200

    csv_text = "age,zip\n" + "".join(f"{r['age']},{r['zip']}\n" for r in rows)
    as_csv = {"csv": csv_text, "quasi_identifiers": ["age", "zip"], "k": 5}
    done_csv = (await alice.send("POST", "/qmask/anonymize", json=as_csv)).json()
    assert done_csv["rows"] is None and done_csv["csv"].startswith("age,zip\n")

    both = await alice.send("POST", "/qmask/anonymize", json={**body, "csv": csv_text})
    assert_problem(both, 400, "request.invalid")
    unknown = await alice.send(
        "POST", "/qmask/anonymize", json={**body, "quasi_identifiers": ["shoe"]}
    )
    assert_problem(unknown, 400, "request.invalid")
