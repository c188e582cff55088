"""The admin API fuzzed from its own OpenAPI document (schemathesis, in-process ASGI over in-memory ports):
every generated request is sent as every kind of caller, and none may end in a 5xx or in a success the
caller is not entitled to."""

from __future__ import annotations

from dataclasses import dataclass

import schemathesis
from hypothesis import HealthCheck, settings

from schemas.access import ApiRole
from tests.unit.admin_api_fixtures import MEMBERS, NOW, Caller, build

ADMIN, AUDITOR, DPO, SITE = ApiRole.ADMIN, ApiRole.AUDITOR, ApiRole.DPO, ApiRole.SITE_OPERATOR
EVERYONE = {ADMIN, AUDITOR, DPO, SITE}
# Who may succeed where, stated by hand (not read back from the app); True: a fresh TOTP code is needed too.
ENTITLED: dict[tuple[str, str], tuple[set[ApiRole], bool]] = {
    ("GET", "/federations"): (EVERYONE, False),
    ("GET", "/federations/{federation_id}/rounds"): (EVERYONE, False),
    ("GET", "/federations/{federation_id}/releases"): (EVERYONE, False),
    ("GET", "/federations/{federation_id}/participants"): ({ADMIN, DPO, SITE}, False),
    ("GET", "/federations/{federation_id}/privacy-ledger"): ({AUDITOR, DPO, SITE}, False),
    ("GET", "/audit/trail"): ({AUDITOR, DPO}, False),
    ("GET", "/audit/verify"): ({AUDITOR, DPO}, False),
    ("POST", "/participants"): ({ADMIN}, True),
    ("POST", "/participants/{participant_id}/key-revocations"): ({ADMIN}, True),
    ("POST", "/participants/{participant_id}/consents"): ({DPO}, True),
    ("POST", "/organisations/{organisation}/baas"): ({DPO}, True),
    ("POST", "/participants/{participant_id}/erasure"): ({DPO}, True),
}

clock = [NOW]
app, ports, users, publisher = build(clock=lambda: clock[0])
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@dataclass(frozen=True)
class Identity:
    caller: Caller | None
    totp: str  # "none", "fresh" (a valid code not used before), "stale" (valid an hour ago), "generated" (schemathesis')


# Every caller without a code; where a code is needed, also with a fresh, a stale and schemathesis' own code.
PLAIN = [Identity(None, "none")] + [Identity(c, "none") for c in users.values()]
WITH_CODES = PLAIN + [Identity(None, "generated")] + [
    Identity(c, totp) for c in users.values() for totp in ("fresh", "stale", "generated")
]


def headers_for(identity: Identity, generated: dict[str, str]) -> dict[str, str]:
    headers = {k: v for k, v in generated.items() if k.lower() not in ("authorization", "x-totp")}
    if identity.caller is not None:
        headers["Authorization"] = f"Bearer {identity.caller.token}"
    clock[0] += 30  # every request in its own TOTP step, so "fresh" is never a replay
    code = {"fresh": lambda c: c.code(clock[0]), "stale": lambda c: c.code(clock[0] - 3600),
            "generated": lambda c: next((v for k, v in generated.items() if k.lower() == "x-totp"), None),
            "none": lambda c: None}[identity.totp](identity.caller)
    if code is not None:
        headers["X-TOTP"] = code
    return headers


def assert_entitled(identity: Identity, method: str, path: str, response) -> None:  # noqa: ANN001 - a requests-like response
    roles, needs_totp = ENTITLED.get((method, path), (set(), False))
    caller = identity.caller
    assert caller is not None, "success without a token"
    assert caller.user.role in roles, f"{caller.user.role} succeeded on {method} {path}"
    if needs_totp:
        assert identity.totp in ("fresh", "generated"), "privileged success without a fresh TOTP code"
    if caller.user.role is SITE and path.endswith(("/participants", "/privacy-ledger")):
        own = set(MEMBERS[caller.user.tenant])
        assert {r["participant_id"] for r in response.json()} <= own, "a site operator saw another tenant's rows"


@schema.parametrize()
@settings(max_examples=6, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_5xx_and_no_unauthorised_success(case):
    generated = dict(case.headers or {})
    _, needs_totp = ENTITLED.get((case.method.upper(), case.path), (set(), False))  # also methods no route has
    for identity in WITH_CODES if needs_totp else PLAIN:
        case.headers = headers_for(identity, generated)
        response = case.call()
        assert response.status_code < 500, (identity, response.status_code, response.text)
        if 200 <= response.status_code < 300:
            assert_entitled(identity, case.method.upper(), case.path, response)
