"""One contract, both ErasureStore adapters: the fake, and PostgreSQL inside a transaction that is rolled back."""

from __future__ import annotations

import json
from uuid import uuid4

import asyncpg
import pytest

from services.compliance.erasure_adapters import PostgresErasureStore
from services.compliance.erasure_fakes import InMemoryErasureStore

SPEC = {"participants": [{"participant_id": "{p}", "organisation": "{o}", "kind": "hospital"},
                         {"participant_id": "{p}0", "organisation": "other-org", "kind": "hospital"}]}


def ids() -> tuple[str, str, str]:
    tag = uuid4().hex[:8]
    return f"f-{tag}", f"site-{tag}", f"org-{tag}"


@pytest.fixture(params=["memory-fake", "postgres"])
async def world(request, pg_pool):
    fed, pid, org = ids()
    spec = json.loads(json.dumps(SPEC).replace("{p}", pid).replace("{o}", org))
    if request.param == "memory-fake":
        yield InMemoryErasureStore({
            "participants": [{"federation_id": fed, "participant_id": pid, "organisation": org},
                             {"federation_id": fed, "participant_id": pid + "0", "organisation": "other-org"}],
            "federations": [{"federation_id": fed, "spec": spec}],
            "participant_enrolments": [{"participant_id": pid, "organisation": org}],
            "rounds": [{"federation_id": fed, "round": 1, "participants": [pid, pid + "0"]}],
        }), fed, pid, org
        return
    async with pg_pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await seed(conn, fed, pid, org, spec)
            yield PostgresErasureStore(conn), fed, pid, org
        finally:
            await tx.rollback()


async def seed(conn: asyncpg.Connection, fed: str, pid: str, org: str, spec: dict) -> None:
    await conn.execute(
        "INSERT INTO federations (federation_id, project_name, use_case, crypto, spec, created_at) "
        "VALUES ($1, 'p', 'other', 'none', $2::text::jsonb, now())", fed, json.dumps(spec))
    await conn.executemany(
        "INSERT INTO participants (federation_id, participant_id, organisation, kind, enrolled_at) "
        "VALUES ($1, $2, $3, 'hospital', now())", [(fed, pid, org), (fed, pid + "0", "other-org")])
    await conn.execute("INSERT INTO participant_enrolments (participant_id, organisation) VALUES ($1, $2)", pid, org)
    await conn.execute("INSERT INTO rounds (federation_id, round, participants) VALUES ($1, 1, $2)", fed, [pid, pid + "0"])

async def test_erase_pseudonymises_the_participant_and_only_it(world):
    store, fed, pid, org = world
    assert await store.federations(pid) == (fed,)
    touched = await store.erase(pid, "pn-test")
    assert touched["participant_enrolments"] == 1  # deleted
    assert touched["participants"] == 2  # its id and its organisation
    assert touched["rounds"] == 1 and touched["federations"] == 1  # an array element, a JSON spec
    assert await store.residual(pid) == ()
    assert await store.federations("pn-test") == (fed,)  # the pseudonym took its place
    assert await store.federations(pid + "0") == (fed,)  # a neighbour whose id contains its id is untouched

