"""Contracts of the services' repository ports (fake vs PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from services.aggregation.adapters import PostgresAggregationRepository
from services.aggregation.domain import RoundState, RoundStatus
from services.aggregation.fakes import InMemoryAggregationRepository
from services.aggregation.ports import StoredContribution
from services.compliance.adapters import PostgresAuditRepository
from services.compliance.domain import AuditEntry, chain
from services.compliance.fakes import InMemoryAuditRepository
from services.ingestion.adapters import PostgresAdmissionRepository
from services.ingestion.domain import FederationView, RoundView
from services.ingestion.fakes import InMemoryAdmissionRepository
from services.privacy_accounting.adapters import PostgresLedgerRepository
from services.privacy_accounting.domain import Charge
from services.privacy_accounting.fakes import InMemoryLedgerRepository
from services.validation.adapters import PostgresValidationRepository
from services.validation.fakes import InMemoryValidationRepository
from services.validation.ports import Candidate
from schemas.base import BlobRef, ParamSpec
from schemas.events import Contribution, EvaluationReported
from schemas.federation import ValidationSpec
from tests.contract.conftest import repository

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BLOB = BlobRef(uri="file:///x", sha256="a" * 64, size=10)

aggregation_repo = repository(InMemoryAggregationRepository, PostgresAggregationRepository)
admission_repo = repository(InMemoryAdmissionRepository, PostgresAdmissionRepository)
ledger_repo = repository(InMemoryLedgerRepository, PostgresLedgerRepository)
audit_repo = repository(InMemoryAuditRepository, PostgresAuditRepository)
validation_repo = repository(InMemoryValidationRepository, PostgresValidationRepository)


def fid() -> str:
    return f"c-{uuid4().hex[:10]}"


async def test_aggregation_rounds_count_each_participant_once(aggregation_repo):
    f = fid()
    state = RoundState(f, 1, 2, T0 + timedelta(seconds=30), ("a", "b"), RoundStatus.COLLECTING)
    assert await aggregation_repo.open_round(state)
    assert not await aggregation_repo.open_round(state)
    contribution = StoredContribution(update_id=uuid4(), participant_id="a", num_examples=5, sha256=BLOB.sha256, blob=BLOB)
    assert await aggregation_repo.add_contribution(f, 1, contribution)
    assert not await aggregation_repo.add_contribution(f, 1, contribution.model_copy(update={"update_id": uuid4()}))
    locked = await aggregation_repo.lock_round(f, 1)
    assert locked.received == 1 and locked.participants == ("a", "b") and locked.status is RoundStatus.COLLECTING
    assert [c.participant_id for c in await aggregation_repo.contributions(f, 1)] == ["a"]
    assert (f, 1) not in await aggregation_repo.due_rounds(T0)
    assert (f, 1) in await aggregation_repo.due_rounds(T0 + timedelta(seconds=31))
    await aggregation_repo.set_status(f, 1, RoundStatus.AGGREGATED, "deadline", T0)
    assert (await aggregation_repo.lock_round(f, 1)).status is RoundStatus.AGGREGATED
    assert (f, 1) not in await aggregation_repo.due_rounds(T0 + timedelta(days=1))
    assert await aggregation_repo.lock_round(f, 2) is None


async def test_admissions_track_rounds_and_one_update_per_participant(admission_repo):
    f = fid()
    params = (ParamSpec(name="w", dtype="float32", shape=(2, 3)),)
    await admission_repo.save_federation(FederationView(f, frozenset({"a", "b"}), params, 1000))
    assert (await admission_repo.federation(f)).params == params
    assert await admission_repo.current_round(f) is None
    await admission_repo.open_round(RoundView(f, 1, frozenset({"a"}), T0, True))
    await admission_repo.open_round(RoundView(f, 2, frozenset({"a", "b"}), T0, True))
    current = await admission_repo.current_round(f)
    assert (current.round, current.open, current.participants) == (2, True, frozenset({"a", "b"}))
    await admission_repo.close_round(f, 2)
    assert not (await admission_repo.current_round(f)).open
    assert await admission_repo.admit(f, 2, "a", uuid4())
    assert not await admission_repo.admit(f, 2, "a", uuid4())
    assert await admission_repo.admit(f, 2, "b", uuid4())


async def test_the_ledger_charges_an_update_once(ledger_repo):
    charge = Charge(uuid4(), fid(), "a", 1, "none", None, None, T0)
    assert await ledger_repo.record(charge)
    assert not await ledger_repo.record(charge)


async def test_the_audit_trail_appends_after_its_head(audit_repo):
    head = await audit_repo.lock_head()
    entry = AuditEntry(uuid4(), "io.fedstream.round.opened.v1", "fedstream.rounds", fid(), 1, "registry", T0, "b" * 64)
    row = chain(head, entry)
    await audit_repo.append(row)
    assert await audit_repo.lock_head() == row
    following = chain(row, AuditEntry(uuid4(), entry.event_type, entry.topic, entry.federation_id, 2, "registry", T0, "c" * 64))
    await audit_repo.append(following)
    assert (await audit_repo.lock_head()).seq == row.seq + 1
    await audit_repo.flush()  # what the handler has run before its transaction commits
    assert await audit_repo.rows_after(row.seq - 1) == [row, following]


async def test_validation_collects_reports_for_the_candidate_only(validation_repo):
    f = fid()
    await validation_repo.save_spec(f, ValidationSpec(), 30.0)
    assert (await validation_repo.spec(f))[1] == 30.0
    contribution = Contribution(update_id=uuid4(), participant_id="a", num_examples=3, sha256="c" * 64)
    candidate = Candidate(f, 1, BLOB, (contribution,), T0, decided=False)
    assert await validation_repo.add_candidate(candidate)
    assert not await validation_repo.add_candidate(candidate)
    assert (await validation_repo.lock_candidate(f, 1)).expected_evaluators == {"a"}

    def report(pid, sha):
        return EvaluationReported(source="p", federation_id=f, participant_id=pid, round=1, candidate_sha256=sha,
                                  num_examples=4, loss=0.2, accuracy=0.9, auc=0.8)

    assert await validation_repo.add_evaluation(report("a", BLOB.sha256))
    assert not await validation_repo.add_evaluation(report("a", BLOB.sha256))
    await validation_repo.add_evaluation(report("b", "d" * 64))
    assert [e.participant_id for e in await validation_repo.evaluations(f, 1, BLOB.sha256)] == ["a"]
    assert await validation_repo.reporters(f, 1, BLOB.sha256) == {"a"}
    assert (f, 1) in await validation_repo.due_candidates(T0)
    await validation_repo.record_decision(f, 1, 0.8, True)
    assert (await validation_repo.lock_candidate(f, 1)).decided
    assert await validation_repo.accepted_scores(f) == [0.8]
    assert (f, 1) not in await validation_repo.due_candidates(T0 + timedelta(days=1))


async def test_a_central_dp_policy_is_kept_and_its_clip_norm_moves(aggregation_repo):
    from services.aggregation.domain import CentralPolicy

    f = fid()
    assert await aggregation_repo.policy(f) is None
    await aggregation_repo.save_policy(f, CentralPolicy(1.2, 1.0, True, 0.5, 0.2))
    await aggregation_repo.set_clip_norm(f, 1.5)
    assert await aggregation_repo.policy(f) == CentralPolicy(1.2, 1.5, True, 0.5, 0.2)
    base = BlobRef(uri="file:///base", sha256="d" * 64, size=4)
    await aggregation_repo.open_round(RoundState(f, 1, 1, T0, ("a",), RoundStatus.COLLECTING, base_model=base))
    assert (await aggregation_repo.lock_round(f, 1)).base_model == base


async def test_the_central_ledger_records_each_round_once(ledger_repo):
    from services.privacy_accounting.domain import CentralCharge

    f = fid()
    first = CentralCharge(f, 1, 2.0, 1.0, 0.5, None, 1e-5, T0)
    assert await ledger_repo.record_central(first)
    assert not await ledger_repo.record_central(first)
    await ledger_repo.record_central(CentralCharge(f, 2, 3.0, 1.0, 0.0, None, 1e-5, T0))
    assert await ledger_repo.central_multipliers(f, before_round=2) == [2.0]
    assert await ledger_repo.central_multipliers(f, before_round=3) == [2.0, 3.0]


async def test_parked_updates_are_handed_over_once(aggregation_repo):
    f = fid()
    parked = StoredContribution(update_id=uuid4(), participant_id="b", num_examples=5, sha256=BLOB.sha256, blob=BLOB)
    await aggregation_repo.park(f, 1, parked)
    await aggregation_repo.park(f, 1, parked)  # redelivered: kept once
    assert [c.update_id for c in await aggregation_repo.take_parked(f, 1)] == [parked.update_id]
    assert await aggregation_repo.take_parked(f, 1) == []
