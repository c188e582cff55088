"""The admin API's access rules over in-memory ports: tokens (401), roles (403), TOTP for privileged actions,
tenant scoping, and the audit record of every read of participant data."""

from __future__ import annotations

import httpx
import pytest

from schemas.access import AccessedResource, ApiRole, ParticipantDataAccessed
from schemas.compliance import EraseParticipant
from schemas.identity import EnrolParticipant, RecordConsent
from tests.unit.admin_api_fixtures import FEDERATION, NOW, build

F = FEDERATION
KEY = "A" * 43
ROUTES = [
    ("GET", "/federations", None),
    ("GET", f"/federations/{F}/rounds", None),
    ("GET", f"/federations/{F}/releases", None),
    ("GET", f"/federations/{F}/participants", None),
    ("GET", f"/federations/{F}/privacy-ledger", None),
    ("GET", "/audit/trail", None),
    ("GET", "/audit/verify", None),
    ("POST", "/participants", {"participant_id": "pc1", "organisation": "org-c", "public_key": KEY}),
    ("POST", "/participants/pa1/key-revocations", {"key_id": "0" * 32}),
    ("POST", "/participants/pa1/consents", {"expires_at": "2027-01-01T00:00:00Z"}),
    ("POST", "/organisations/org-a/baas", {"reference": "baa-1", "expires_at": "2027-01-01T00:00:00Z"}),
    ("POST", "/participants/pa1/erasure", {"reason": "art. 17 request"}),
]


@pytest.fixture
def api():
    app, ports, users, publisher = build()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
    return client, ports, users, publisher


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_no_token_or_an_unknown_one_is_401(api, method, path, body):
    client, _, _, publisher = api
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 401, (headers, response.text)
    assert publisher.events == []


@pytest.mark.parametrize(("caller", "method", "path"), [
    ("auditor", "GET", f"/federations/{F}/participants"),
    ("admin", "GET", f"/federations/{F}/privacy-ledger"),
    ("admin", "GET", "/audit/trail"),
    ("site-a", "GET", "/audit/verify"),
    ("dpo", "POST", "/participants"),
    ("site-a", "POST", "/participants/pa1/consents"),
    ("admin", "POST", "/organisations/org-a/baas"),
    ("admin", "POST", "/participants/pa1/erasure"),
    ("site-a", "POST", "/participants/pa1/erasure"),
])
async def test_a_role_without_the_right_is_403_even_with_a_valid_totp(api, caller, method, path):
    client, _, users, publisher = api
    body = next(b for m, p, b in ROUTES if (m, p) == (method, path))
    response = await client.request(method, path, json=body, headers=users[caller].headers(users[caller].code()))
    assert response.status_code == 403
    assert publisher.events == []


async def test_a_privileged_action_needs_a_fresh_totp_code(api):
    client, _, users, publisher = api
    admin = users["admin"]
    body = {"participant_id": "pc1", "organisation": "org-c", "public_key": KEY}
    assert (await client.post("/participants", json=body, headers=admin.headers())).status_code == 401
    assert (await client.post("/participants", json=body, headers=admin.headers("000000" if admin.code() != "000000" else "111111"))).status_code == 401
    assert (await client.post("/participants", json=body, headers=admin.headers(admin.code(NOW - 300)))).status_code == 401
    assert publisher.events == []

    accepted = await client.post("/participants", json=body, headers=admin.headers(admin.code()))
    assert accepted.status_code == 202, accepted.text
    [event] = publisher.events
    assert isinstance(event, EnrolParticipant)
    assert (event.participant_id, event.organisation, event.requested_by) == ("pc1", "org-c", "user-admin")
    assert accepted.json() == {"event_id": str(event.event_id), "type": event.TYPE, "topic": "fedstream.commands"}

    replayed = await client.post("/participants", json=body, headers=admin.headers(admin.code()))
    assert replayed.status_code == 401  # the same code, spent
    assert len(publisher.events) == 1


async def test_consent_goes_to_the_participants_organisation_and_unknown_participants_are_404(api):
    client, _, users, publisher = api
    dpo = users["dpo"]
    response = await client.post("/participants/pb1/consents", json={"expires_at": "2027-01-01T00:00:00Z"},
                                 headers=dpo.headers(dpo.code()))
    assert response.status_code == 202, response.text
    [event] = publisher.events
    assert isinstance(event, RecordConsent) and event.federation_id == "org-b" and event.participant_id == "pb1"
    missing = await client.post("/participants/nobody/consents", json={"expires_at": "2027-01-01T00:00:00Z"},
                                headers=dpo.headers(dpo.code(NOW + 30)))
    assert missing.status_code == 404


@pytest.mark.parametrize("resource", ["participants", "privacy-ledger"])
async def test_a_site_operator_reads_its_own_tenant_and_every_read_is_audited(api, resource):
    client, _, users, publisher = api
    for caller, expected in (("site-a", {"pa1", "pa2"}), ("site-b", {"pb1"})):
        response = await client.get(f"/federations/{F}/{resource}", headers=users[caller].headers())
        assert response.status_code == 200
        assert {r["participant_id"] for r in response.json()} == expected
        access = publisher.events[-1]
        assert isinstance(access, ParticipantDataAccessed)
        assert (access.accessor, access.role, access.tenant) == (users[caller].user.user_id, ApiRole.SITE_OPERATOR,
                                                                 users[caller].user.tenant)
        assert set(access.participant_ids) == expected and access.federation_id == F
        assert access.resource is AccessedResource(resource.replace("-", "_"))
    assert len(publisher.events) == 2


async def test_oversight_reads_every_tenant_and_is_audited_too(api):
    client, _, users, publisher = api
    response = await client.get(f"/federations/{F}/privacy-ledger", headers=users["auditor"].headers())
    assert {r["participant_id"] for r in response.json()} == {"pa1", "pa2", "pb1"}
    [access] = publisher.events
    assert access.tenant is None and access.role is ApiRole.AUDITOR and set(access.participant_ids) == {"pa1", "pa2", "pb1"}


async def test_a_read_that_cannot_be_audited_is_not_answered(api):
    client, _, users, publisher = api
    publisher.failing = True
    response = await client.get(f"/federations/{F}/participants", headers=users["dpo"].headers())
    assert response.status_code == 503
    assert "pa1" not in response.text


async def test_reads_without_participant_data_are_not_logged_as_access(api):
    client, _, users, publisher = api
    for path in ("/federations", f"/federations/{F}/rounds", "/audit/verify"):
        assert (await client.get(path, headers=users["dpo"].headers())).status_code == 200
    assert publisher.events == []


async def test_a_disabled_user_is_401(api):
    client, ports, users, _ = api
    from dataclasses import replace

    from fedstream.api.auth import token_hash

    ports.users.users[token_hash(users["dpo"].token)] = replace(users["dpo"].user, disabled=True)
    assert (await client.get("/federations", headers=users["dpo"].headers())).status_code == 401


def test_the_committed_openapi_document_is_fresh():
    from fedstream.api.openapi import OPENAPI_FILE, render

    assert OPENAPI_FILE.read_text(encoding="utf-8") == render(), "stale: run python -m fedstream.api.openapi"


async def test_an_erasure_request_is_a_command_to_compliance(api):
    client, _, users, publisher = api
    dpo = users["dpo"]
    response = await client.post("/participants/pa1/erasure", json={"reason": "art. 17"}, headers=dpo.headers(dpo.code()))
    assert response.status_code == 202, response.text
    [event] = publisher.events
    assert isinstance(event, EraseParticipant)
    assert (event.participant_id, event.reason, event.requested_by) == ("pa1", "art. 17", "user-dpo")


async def test_a_user_without_a_totp_secret_reads_but_takes_no_privileged_action(api):
    """What migration 020 leaves for users whose plaintext secret it dropped, until one is re-issued."""
    client, ports, users, publisher = api
    from dataclasses import replace

    from fedstream.api.auth import token_hash

    admin = users["admin"]
    ports.users.users[token_hash(admin.token)] = replace(admin.user, totp_secret=None)
    assert (await client.get("/federations", headers=admin.headers())).status_code == 200
    body = {"participant_id": "pc1", "organisation": "org-c", "public_key": KEY}
    assert (await client.post("/participants", json=body, headers=admin.headers(admin.code()))).status_code == 401
    assert publisher.events == []
