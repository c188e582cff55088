"""The message contract: events are frozen, strict and minimal; the codec is the trust edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
import yaml
from pydantic import ValidationError

from fedstream.messaging.codec import MalformedMessage, Record, decode, encode
from schemas import events as ev
from schemas.alerts import AlertKind, AlertRaised, AlertSeverity
from schemas.base import BlobRef, Event, ParamSpec, derived_id
from schemas.federation import FederationSpec, SpecError, parse_spec
from schemas.registry import EVENT_TYPES, UnknownEventType, event_class
from schemas.topics import ALL_TOPICS, ROUNDS, topic_for

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples" / "federations").glob("*.yaml"))
FED = "breast-cancer-pilot"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _blob(n: int = 1) -> BlobRef:
    return BlobRef(uri=f"file:///blobs/{n}", sha256=f"{n:064x}", size=1024)


def _spec() -> FederationSpec:
    return parse_spec(EXAMPLES[0].read_text())


def _metrics() -> ev.ModelMetrics:
    return ev.ModelMetrics(loss=0.4, accuracy=0.9, auc=0.95, num_examples=300, evaluators=3)


def _contribution() -> ev.Contribution:
    return ev.Contribution(update_id=derived_id("u", 1), participant_id="hospital-a", num_examples=100, sha256="a" * 64)


def sample_events() -> list[Event]:
    """One realistic instance of every message type (explicit ids and times, so they are reproducible)."""
    common = {"federation_id": FED, "time": T0}
    spec = _spec()
    update_id = derived_id(FED, "update", 1)
    return [
        ev.CreateFederation(source="cli", spec=spec, requested_by="operator-1", **common),
        ev.FederationCreated(
            source="registry", spec=spec, params=(ParamSpec(name="linear.weight", dtype="float32", shape=(1, 30)),),
            initial_model=_blob(), **common,
        ),
        ev.RoundOpened(
            source="registry", round=1, model_version=0, global_model=_blob(), participants=("hospital-a", "hospital-b"),
            quorum=2, deadline=T0 + timedelta(seconds=60), local_epochs=1, learning_rate=0.1, batch_size=16, **common,
        ),
        ev.ModelReleased(
            source="registry", round=1, model_version=1, model=_blob(2), metrics=_metrics(),
            contributions=(_contribution(),), **common,
        ),
        ev.FederationCompleted(
            source="registry", reason=ev.CompletionReason.CONVERGED, rounds=3, final_model_version=3, **common
        ),
        ev.UpdateSubmitted(
            source="hospital-a", update_id=update_id, participant_id="hospital-a", round=1, base_model_version=0,
            update=_blob(3), num_examples=100, train_loss=0.52, **common,
        ),
        ev.ParticipantHeartbeat(source="hospital-a", participant_id="hospital-a", ttl_s=30.0, **common),
        ev.EvaluationReported(
            source="hospital-a", participant_id="hospital-a", round=1, candidate_sha256="b" * 64, num_examples=50,
            loss=0.3, accuracy=0.91, auc=None, **common,
        ),
        ev.UpdateAccepted(
            source="ingestion", update_id=update_id, participant_id="hospital-a", round=1, update=_blob(3),
            num_examples=100, train_loss=0.52, **common,
        ),
        ev.UpdateRejected(
            source="ingestion", update_id=update_id, participant_id="Unknown Site", round=7,
            reason=ev.RejectionReason.UNKNOWN_ROUND, detail="round 7 is not open", **common,
        ),
        ev.PrivacyCharged(
            source="privacy-accounting", update_id=update_id, participant_id="hospital-a", round=1, update=_blob(3),
            num_examples=100, epsilon=0.1, delta=1e-5, **common,
        ),
        ev.BudgetExhausted(
            source="privacy-accounting", update_id=update_id, participant_id="hospital-a", round=9,
            dataset_id="breast_cancer", reason=ev.BudgetReason.EXHAUSTED, detail="ε 0.52 over the budget 0.5",
            epsilon_spent=0.48, epsilon_requested=0.52, budget_epsilon=0.5, delta=1e-5, **common,
        ),
        ev.RoundAggregated(
            source="aggregation", round=1, aggregate=_blob(4), contributions=(_contribution(),),
            closed_by="all_submitted", **common,
        ),
        ev.RoundFailed(source="aggregation", round=2, reason="quorum_not_met", received=1, quorum=2, **common),
        ev.ModelValidated(
            source="validation", round=1, candidate=_blob(4), metrics=_metrics(), contributions=(_contribution(),),
            converged=False, target_reached=False, **common,
        ),
        ev.ModelRejected(
            source="validation", round=1, candidate=_blob(4), gate=ev.ValidationGate.REGRESSION,
            detail="auc fell by 0.2", metrics=None, **common,
        ),
        AlertRaised(
            source="validation", kind=AlertKind.SECURITY_BREACH, severity=AlertSeverity.CRITICAL, subject="Unknown Site",
            round=None, window_start=T0, window_end=T0 + timedelta(minutes=5), value=3.0, threshold=3.0,
            dedup_key=f"{FED}/security_breach/Unknown Site/{T0.isoformat()}", summary="3 forged updates in 300s", **common,
        ),
        *_custody_samples(common),
        *_erasure_samples(),
        *_identity_samples(common),
        *_audit_samples(common),
        *_access_samples(common),
    ]


def _access_samples(common: dict) -> list[Event]:
    from schemas.access import AccessedResource, ApiRole, ParticipantDataAccessed

    return [ParticipantDataAccessed(source="admin-api", accessor="site-a", role=ApiRole.SITE_OPERATOR, tenant="org-a",
                                    resource=AccessedResource.PARTICIPANTS, participant_ids=("hospital-a",), **common)]


def _audit_samples(common: dict) -> list[Event]:
    from schemas.compliance import AuditCheckpointSigned

    return [AuditCheckpointSigned(source="compliance", tree_size=8, root_hash="5" * 64, signed_at=T0, key_id="e" * 32,
                                  public_key="A" * 43, signature="B" * 86, previous_size=5,
                                  consistency_proof=("6" * 64, "7" * 64), **common)]


def _identity_samples(common: dict) -> list[Event]:
    from schemas import identity as idn

    key, key_id = "A" * 43, "e" * 32
    later = T0 + timedelta(days=365)
    return [  # identity messages carry the organisation as their federation_id; FED stands in for it here
        idn.EnrolParticipant(source="operator", participant_id="hospital-a", organisation="north-clinic", public_key=key,
                             baa_reference="baa-17", requested_by="admin", **common),
        idn.RevokeParticipantKey(source="operator", participant_id="hospital-a", key_id=key_id, reason="lost laptop",
                                 requested_by="admin", **common),
        idn.RecordConsent(source="operator", participant_id="hospital-a", expires_at=later, requested_by="dpo", **common),
        idn.RegisterBaa(source="operator", organisation="north-clinic", reference="baa-17", expires_at=later,
                        requested_by="dpo", **common),
        idn.ParticipantEnrolled(source="registry", participant_id="hospital-a", organisation="north-clinic", key_id=key_id,
                                public_key=key, baa_reference="baa-17", **common),
        idn.ParticipantKeyRevoked(source="registry", participant_id="hospital-a", key_id=key_id, reason="lost laptop", **common),
        idn.ConsentRecorded(source="registry", participant_id="hospital-a", purpose="federated_training", scope="*",
                            expires_at=later, granted=True, **common),
        idn.BaaRegistered(source="registry", organisation="north-clinic", reference="baa-17", expires_at=later, active=True,
                          **common),
        idn.IdentityRefused(source="registry", command_id=str(derived_id("cmd")), reason="key revoked", **common),
    ]


def _erasure_samples() -> list[Event]:
    from schemas import compliance as cp

    gdpr = {"federation_id": FED, "time": T0}  # erasures travel under cp.ERASURE_SCOPE; the codec test keys on FED
    return [
        cp.EraseParticipant(source="operator", participant_id="hospital-a", requested_by="dpo", **gdpr),
        cp.ParticipantErased(source="compliance", pseudonym="pn-0123456789abcdef01234567", erased_at=T0,
                             federation_id=FED, time=T0),
        cp.ErasureCertified(source="compliance", request_id=derived_id("erase", 1), pseudonym="pn-0123456789abcdef01234567",
                            erased_at=T0, federations=(FED,), erased=(cp.ErasedRecords(table="privacy_ledger", changes=3),),
                            redis_entries=1, shredded_key_ids=("0" * 32,),
                            lineage=(cp.LineageEntry(federation_id=FED, round=1, model_version=1),), **gdpr),
    ]


def _custody_samples(common: dict) -> list[Event]:
    from schemas import custody
    from schemas.he import HeScheme, HeSpec

    return [
        custody.HeContextPublished(source="key-custody", scheme=HeScheme.CKKS, fingerprint="c" * 64,
                                   public_context=_blob(7), params=HeSpec(), **common),
        custody.EncryptedAggregateReady(source="aggregation", round=1, aggregate=_blob(8), fingerprint="c" * 64,
                                        contributions=(_contribution(),), updates=(BlobRef(uri="file:///blobs/a", sha256="a" * 64, size=1024),), total_weight=100,
                                        weighting="fraction", closed_by="deadline", **common),
        custody.AggregateDecrypted(source="key-custody", round=1, ciphertext_sha256="8" * 64, model_sha256="9" * 64,
                                   contributors=3, quorum=2, **common),
        custody.DecryptionRefused(source="key-custody", round=1, ciphertext_sha256="8" * 64,
                                  reason=custody.RefusalReason.BELOW_QUORUM, detail="1 contributor, quorum 2", **common),
    ]


SAMPLES = sample_events()


def _round_opened() -> ev.RoundOpened:
    return next(e for e in SAMPLES if isinstance(e, ev.RoundOpened))


def test_there_is_a_sample_of_every_message_type() -> None:
    # Adding an event type without a sample here would leave it out of every round-trip test below.
    assert {type(e).TYPE for e in SAMPLES} == set(EVENT_TYPES)


# --- envelope --------------------------------------------------------------------------------------


def test_events_are_frozen() -> None:
    event = _round_opened()
    with pytest.raises(ValidationError, match="frozen"):
        event.round = 2  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        event.global_model.size = 0  # type: ignore[misc]


def test_strict_python_input_refuses_a_string_for_an_int() -> None:
    data = _round_opened().model_dump() | {"round": "1"}
    with pytest.raises(ValidationError, match="round"):
        ev.RoundOpened.model_validate(data)


def test_extra_fields_are_refused_for_data_minimisation() -> None:
    data = SAMPLES[5].model_dump(mode="json") | {"patient_name": "Jane Doe"}
    with pytest.raises(ValidationError, match="patient_name"):
        ev.UpdateSubmitted.model_validate(data)
    nested = _round_opened().model_dump() | {"global_model": {**_blob().model_dump(), "owner": "x"}}
    with pytest.raises(ValidationError, match="owner"):
        ev.RoundOpened.model_validate(nested)


def test_identifiers_refuse_free_text() -> None:
    # Ids end up in Kafka keys and logs, so a person's name must never fit in one.
    with pytest.raises(ValidationError, match="federation_id"):
        ev.ParticipantHeartbeat(source="x", federation_id="Jane Doe", participant_id="hospital-a", ttl_s=1.0)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_json_round_trip_is_lossless(event: Event) -> None:
    assert type(event).model_validate_json(event.model_dump_json()) == event


@pytest.mark.parametrize("event_type", list(EVENT_TYPES.values()), ids=lambda c: c.__name__)
def test_every_event_type_is_on_exactly_one_topic(event_type: type[Event]) -> None:
    carriers = [t.name for t in ALL_TOPICS if t.carries(event_type)]
    assert carriers == [topic_for(event_type).name]


def test_registry_maps_every_type_to_its_class() -> None:
    classes = {m for t in ALL_TOPICS for m in t.messages}
    assert set(EVENT_TYPES.values()) == classes
    assert all(EVENT_TYPES[cls.TYPE] is cls for cls in classes)
    assert len(EVENT_TYPES) == len(classes), "two classes share a TYPE"


def test_unknown_type_is_a_named_error() -> None:
    with pytest.raises(UnknownEventType, match="io.fedstream.nope.v1"):
        event_class("io.fedstream.nope.v1")


def test_a_type_name_outside_the_convention_is_refused_at_class_definition() -> None:
    with pytest.raises(TypeError, match="io.fedstream"):
        type("Bad", (Event,), {"TYPE": "RoundOpened", "__annotations__": {}})


def test_derived_id_is_deterministic_and_distinguishes_facts() -> None:
    assert derived_id(FED, "round", 3, "closed") == derived_id(FED, "round", 3, "closed")
    assert derived_id(FED, "round", 3, "closed") != derived_id(FED, "round", 4, "closed")
    assert isinstance(derived_id("x"), UUID)


# --- federation spec -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_specs_parse(path: Path) -> None:
    spec = parse_spec(path.read_text())
    assert spec.training.quorum <= len(spec.participants)
    assert len(set(spec.participant_ids)) == len(spec.participants)


def _bad_spec(**changes: object) -> str:
    data = yaml.safe_load(EXAMPLES[0].read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node[p]
        node[leaf] = value
    return yaml.safe_dump(data)


def _participants_with_duplicate() -> list[dict[str, str]]:
    first = {"participant_id": "hospital-a", "organisation": "north-clinic"}
    return [first, dict(first), {"participant_id": "hospital-b", "organisation": "south-clinic"}]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"participants": _participants_with_duplicate()}, r"participant ids must be unique; repeated: hospital-a"),
        ({"training__quorum": 4}, r"training\.quorum \(4\) exceeds the number of participants \(3\)"),
        ({"model__hidden": [8]}, r"model: .*logistic model has no hidden layers"),
        ({"use_case": "astrology"}, r"use_case: Input should be 'clinical_prediction'"),
        ({"training__learning_rate": -1}, r"training\.learning_rate: "),
    ],
    ids=["duplicate-participants", "quorum-too-large", "logistic-with-hidden", "unknown-use-case", "negative-lr"],
)
def test_bad_spec_errors_name_the_field(changes: dict[str, object], expected: str) -> None:
    with pytest.raises(SpecError, match=expected):
        parse_spec(_bad_spec(**changes))


@pytest.mark.parametrize("text", ["[1, 2]", "federation_id: [", ""], ids=["list", "bad-yaml", "empty"])
def test_a_spec_that_is_not_a_mapping_is_refused(text: str) -> None:
    with pytest.raises(SpecError):
        parse_spec(text)


# --- codec -----------------------------------------------------------------------------------------


CE_HEADERS = {
    "ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "ce_subject", "ce_dataschema", "content-type",
    "traceparent",
}


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_codec_round_trip_with_cloudevents_headers(event: Event) -> None:
    record = encode(event, topic_for(type(event)).name)
    assert {name for name, _ in record.headers} == CE_HEADERS
    assert record.header("ce_type") == event.TYPE
    assert record.header("ce_id") == str(event.event_id)
    assert record.key == FED.encode()
    assert decode(record) == event


def test_codec_subject_names_the_round() -> None:
    assert encode(_round_opened(), ROUNDS.name).header("ce_subject") == f"{FED}/round/1"


def test_codec_keeps_a_given_traceparent() -> None:
    parent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    assert encode(_round_opened(), ROUNDS.name, traceparent=parent).header("traceparent") == parent


def _good_record() -> Record:
    return encode(_round_opened(), ROUNDS.name)


def _with_header(record: Record, name: str, value: str | None) -> Record:
    headers = [(k, v) for k, v in record.headers if k != name]
    if value is not None:
        headers.append((name, value.encode()))
    return Record(record.topic, record.key, record.value, headers)


def _with_value(record: Record, value: bytes) -> Record:
    return Record(record.topic, record.key, value, record.headers)


@pytest.mark.parametrize(
    ("make_record", "reason"),
    [
        (lambda r: _with_value(r, b"\x00\xffnot json at all"), "does not match its schema"),
        (lambda r: _with_header(r, "ce_type", None), "missing CloudEvents headers"),
        (lambda r: _with_header(r, "ce_specversion", "0.3"), "missing CloudEvents headers"),
        (lambda r: _with_header(r, "ce_type", "io.fedstream.unheard.of.v1"), "unknown event type"),
        (lambda r: _with_header(r, "ce_type", ev.UpdateSubmitted.TYPE), "does not match its schema"),
        (lambda r: _with_value(r, r.value.replace(b'"round":1', b'"round":"1"')), "round"),
        (lambda r: _with_header(r, "ce_id", str(derived_id("someone else"))), "ce_id header disagrees"),
        (lambda r: Record(r.topic, b"another-federation", r.value, r.headers), "key is not the event's federation id"),
    ],
    ids=["garbage", "no-ce_type", "wrong-specversion", "unknown-type", "schema-mismatch", "string-for-int",
         "ce_id-mismatch", "wrong-key"],
)
def test_decode_refuses_malformed_records(make_record, reason: str) -> None:  # noqa: ANN001
    record = make_record(_good_record())
    with pytest.raises(MalformedMessage, match=reason):
        decode(record)


def test_the_mutated_payload_really_changed() -> None:
    # Guards the string-for-int case above: if encoding changed, the replace would silently do nothing.
    assert b'"round":1' in _good_record().value
