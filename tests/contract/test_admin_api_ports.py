"""Contract of the admin API's ports: the in-memory fakes and the PostgreSQL adapters (whose rows come
through row-level security) answer the same questions the same way."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from fedstream.api.adapters import PostgresReadStore, PostgresUserDirectory
from fedstream.api.auth import Principal, User
from fedstream.api.fakes import InMemoryReadStore, InMemoryUserDirectory
from fedstream.api.totp_secrets import TotpSecretSealer
from fedstream.security.keys import InMemoryKeyManager
from fedstream.api.models import FederationOut, LedgerOut, ParticipantOut
from schemas.access import ApiRole
from tests.tenancy_helpers import enrol

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
async def world(pg_pool):
    """One federation, organisations A (two participants) and B (one), in PostgreSQL and in the fake."""
    s = uuid4().hex[:8]
    federation, members = f"f-{s}", {f"org-a-{s}": [f"pa1-{s}", f"pa2-{s}"], f"org-b-{s}": [f"pb1-{s}"]}
    fake = InMemoryReadStore()
    fake.federation_rows.append(FederationOut(federation_id=federation, project_name="p", use_case="u", crypto="none",
                                              created_at=T0, completed_at=None, completion_reason=None, rounds_run=None))
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO federations (federation_id, project_name, use_case, crypto, spec, created_at) "
                           "VALUES ($1, 'p', 'u', 'none', '{}'::jsonb, $2)", federation, T0)
        await conn.execute("INSERT INTO privacy_federations VALUES ($1, 0.5, 1e-5, true)", federation)
        for organisation, participants in members.items():
            for p in participants:
                await enrol(conn, p, organisation)
                await conn.execute("INSERT INTO participants VALUES ($1, $2, $3, 'hospital', $4)", federation, p, organisation, T0)
                await conn.execute(
                    "INSERT INTO privacy_ledger (update_id, federation_id, participant_id, round, mechanism, epsilon, delta, "
                    "charged_at, dataset_id, noise_multiplier, budget_epsilon) VALUES ($1, $2, $3, 1, 'dp_sgd', 0.1, 1e-5, $4, "
                    "'d', 1.0, 0.5)", uuid4(), federation, p, T0)
                fake.enrolments[p] = organisation
                fake.ledger_rows.setdefault(federation, []).append(LedgerOut(
                    participant_id=p, dataset_id="d", charges=1, last_round=1, epsilon_spent=0.1, epsilon_remaining=0.4,
                    budget_epsilon=0.5, budget_delta=1e-5, exhausted=False))
                fake.participant_rows.setdefault(federation, []).append(
                    ParticipantOut(participant_id=p, organisation=organisation, kind="hospital", enrolled_at=T0))
    return federation, members, fake


@pytest.fixture(params=["fake", "postgres"])
def store(request, world, pg_pool):
    return world[2] if request.param == "fake" else PostgresReadStore(pg_pool)


@pytest.fixture(params=["fake", "postgres"])
def directory(request, pg_pool):
    return InMemoryUserDirectory() if request.param == "fake" else PostgresUserDirectory(pg_pool, TotpSecretSealer(InMemoryKeyManager()))


async def test_participants_are_scoped_to_the_site_operators_tenant(store, world):
    federation, members, _ = world
    for organisation, participants in members.items():
        who = Principal(f"site-{organisation}", ApiRole.SITE_OPERATOR, organisation)
        assert {p.participant_id for p in await store.participants(who, federation)} == set(participants)
    dpo = Principal("dpo-1", ApiRole.DPO, None)
    assert {p.participant_id for p in await store.participants(dpo, federation)} == {p for ps in members.values() for p in ps}


async def test_the_ledger_is_scoped_to_the_site_operators_tenant(store, world):
    federation, members, _ = world
    for organisation, participants in members.items():
        who = Principal(f"site-{organisation}", ApiRole.SITE_OPERATOR, organisation)
        rows = await store.ledger(who, federation)
        assert {r.participant_id for r in rows} == set(participants)
        assert all((r.epsilon_spent, r.epsilon_remaining, r.charges) == (0.1, 0.4, 1) for r in rows)
    auditor = Principal("auditor-1", ApiRole.AUDITOR, None)
    assert {r.participant_id for r in await store.ledger(auditor, federation)} == {p for ps in members.values() for p in ps}


# What each role may call (the API's own rules): every one of these runs under the role's database grants.
ROLE_READS = {
    ApiRole.ADMIN: ("federations", "rounds", "releases", "participants", "organisation_of"),
    ApiRole.AUDITOR: ("federations", "rounds", "releases", "ledger", "audit_trail", "verify_audit_trail"),
    ApiRole.DPO: ("federations", "rounds", "releases", "participants", "ledger", "audit_trail", "verify_audit_trail",
                  "organisation_of"),
    ApiRole.SITE_OPERATOR: ("federations", "rounds", "releases", "participants", "ledger"),
}


@pytest.mark.parametrize("role", list(ROLE_READS))
async def test_every_read_a_role_is_allowed_runs_within_its_database_grants(store, world, role):
    federation, members, _ = world
    who = Principal(f"{role.value}-1", role, next(iter(members)) if role is ApiRole.SITE_OPERATOR else None)
    calls = {
        "federations": lambda: store.federations(who), "rounds": lambda: store.rounds(who, federation),
        "releases": lambda: store.releases(who, federation), "participants": lambda: store.participants(who, federation),
        "ledger": lambda: store.ledger(who, federation), "audit_trail": lambda: store.audit_trail(who, 0, 10),
        "verify_audit_trail": lambda: store.verify_audit_trail(who),
        "organisation_of": lambda: store.organisation_of(who, members[next(iter(members))][0]),
    }
    for name in ROLE_READS[role]:
        await calls[name]()  # a missing grant would raise InsufficientPrivilegeError here
    assert federation in {f.federation_id for f in await store.federations(who)}


async def test_organisation_of_an_enrolled_participant(store, world):
    _, members, _ = world
    admin = Principal("admin-1", ApiRole.ADMIN, None)
    for organisation, participants in members.items():
        assert await store.organisation_of(admin, participants[0]) == organisation
    assert await store.organisation_of(admin, f"nobody-{uuid4().hex[:6]}") is None


async def test_a_totp_step_is_spent_once_and_never_an_earlier_one(directory):
    user_id = f"u-{uuid4().hex[:8]}"
    token = uuid4().hex * 2
    if isinstance(directory, InMemoryUserDirectory):
        directory.users[token] = User(user_id, ApiRole.DPO, None, "S" * 32)
    else:
        await directory.add(user_id, ApiRole.DPO, None, token, "S" * 32)
    found = await directory.by_token_hash(token)
    assert (found.user_id, found.role, found.tenant, found.disabled) == (user_id, ApiRole.DPO, None, False)
    assert found.totp_secret == "S" * 32  # stored sealed by the real adapter, opened again on the way out
    assert await directory.by_token_hash("f" * 64) is None
    assert await directory.spend_totp_step(user_id, 100)
    assert not await directory.spend_totp_step(user_id, 100)
    assert not await directory.spend_totp_step(user_id, 99)
    assert await directory.spend_totp_step(user_id, 101)
