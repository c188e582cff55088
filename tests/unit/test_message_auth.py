"""The one decision on a participant message's authenticity (fedstream.security.message_auth), and that it is
the decision ingestion's admission gate already makes for submissions."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from fedstream.security import message_auth, signing
from fedstream.security.message_auth import Refusal
from services.ingestion.identity import IdentityPolicy, KeyView, check_signer
from schemas import events as ev

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=300)
A_KEY, B_KEY = signing.generate_key(), signing.generate_key()


@dataclass(frozen=True)
class Key:
    key_id: str
    participant_id: str
    public_key: str
    revoked: bool = False


def view(private, participant: str, revoked: bool = False) -> Key:
    public = signing.public_key_text(private)
    return Key(signing.key_id_of(public), participant, public, revoked)


def report(participant: str = "a", **changes) -> ev.EvaluationReported:
    fields = dict(source=f"participant/{participant}", federation_id="f", participant_id=participant, round=3,
                  candidate_sha256="c" * 64, num_examples=40, loss=0.4, accuracy=0.8, auc=0.9)
    return ev.EvaluationReported(**(fields | changes))


def heartbeat(participant: str = "a") -> ev.ParticipantHeartbeat:
    return ev.ParticipantHeartbeat(source=f"participant/{participant}", federation_id="f", participant_id=participant,
                                   ttl_s=15)


def signed(event, private=A_KEY, at=T0, topic="fedstream.evaluations"):
    return signing.sign(event, topic, private, at)


def reason(event, key, now=T0, topic="fedstream.evaluations"):
    refused = message_auth.authenticate(event, topic, key, now, WINDOW)
    return None if refused is None else refused.reason


def test_a_message_signed_by_its_participant_within_the_window_is_accepted():
    assert reason(signed(report()), view(A_KEY, "a")) is None
    assert reason(signed(heartbeat(), topic="fedstream.heartbeats"), view(A_KEY, "a"), topic="fedstream.heartbeats") is None
    # the transport id is not signed: a redelivery under another event id is the same message (replay is the caller's)
    assert reason(signed(report()).model_copy(update={"event_id": uuid4()}), view(A_KEY, "a")) is None


def test_an_unsigned_message_is_refused_whatever_key_the_receiver_has():
    assert reason(report(), None) is Refusal.UNSIGNED
    assert reason(report(), view(A_KEY, "a")) is Refusal.UNSIGNED


def test_a_key_the_receiver_never_saw_enrolled_is_unknown():
    assert reason(signed(report()), None) is Refusal.UNKNOWN_KEY


def test_a_revoked_key_is_refused_even_with_a_valid_signature():
    assert reason(signed(report()), view(A_KEY, "a", revoked=True)) is Refusal.KEY_REVOKED


def test_a_participant_cannot_speak_for_another_with_its_own_valid_key():
    forged = signed(report("b"), private=A_KEY)  # A's enrolled key, claiming to be b
    refused = message_auth.authenticate(forged, "fedstream.evaluations", view(A_KEY, "a"), T0, WINDOW)
    assert refused.reason is Refusal.SOURCE_MISMATCH and "'a'" in refused.detail and "'b'" in refused.detail
    # nor by claiming the right participant id from another source
    assert reason(signed(report("a", source="participant/b")), view(A_KEY, "a")) is Refusal.SOURCE_MISMATCH


def test_a_signature_by_another_key_than_the_one_it_names_is_invalid():
    genuine = signed(report())
    impostor = genuine.model_copy(update={"signature": signed(report(), private=B_KEY).signature.model_copy(
        update={"key_id": genuine.signature.key_id})})  # B's signature bytes under A's key id
    assert reason(impostor, view(A_KEY, "a")) is Refusal.SIGNATURE_INVALID


@pytest.mark.parametrize("change", [{"accuracy": 0.99}, {"auc": 0.1}, {"round": 4}, {"candidate_sha256": "d" * 64},
                                    {"federation_id": "g"}, {"num_examples": 4000}, {"time": T0 + timedelta(days=1)}])
def test_any_tampered_field_breaks_the_signature(change):
    assert reason(signed(report()).model_copy(update=change), view(A_KEY, "a")) is Refusal.SIGNATURE_INVALID


def test_a_message_signed_for_another_topic_does_not_verify_on_this_one():
    assert reason(signed(heartbeat(), topic="fedstream.heartbeats"), view(A_KEY, "a")) is Refusal.SIGNATURE_INVALID


def test_outside_the_freshness_window_either_way_is_stale():
    key = view(A_KEY, "a")
    assert reason(signed(report(), at=T0 - WINDOW), key) is None  # the window's edge is inside
    assert reason(signed(report(), at=T0 - WINDOW - timedelta(seconds=1)), key) is Refusal.STALE
    assert reason(signed(report(), at=T0 + WINDOW + timedelta(seconds=1)), key) is Refusal.STALE  # the signer's clock is ahead


def test_a_stale_time_cannot_be_fixed_up_without_breaking_the_signature():
    old = signed(report(), at=T0 - timedelta(hours=1))
    refreshed = old.model_copy(update={"signature": old.signature.model_copy(update={"signed_at": T0})})
    assert reason(refreshed, view(A_KEY, "a")) is Refusal.SIGNATURE_INVALID


def test_the_lookup_and_replay_handles():
    event = signed(report())
    assert message_auth.key_id_of(event) == view(A_KEY, "a").key_id
    assert message_auth.nonce_of(event) == f"{event.signature.key_id}:{event.signature.nonce}"
    assert message_auth.key_id_of(report()) is None and message_auth.nonce_of(report()) is None


def test_ingestions_check_of_submitters_makes_the_same_decisions():
    """check_signer (services/ingestion/identity.py) could be a thin mapping of ``authenticate``: same words, same
    order, on every case."""

    def submission(participant="a", source=None):
        return ev.UpdateSubmitted(
            source=source or f"participant/{participant}", federation_id="f", update_id=uuid4(), participant_id=participant,
            round=1, base_model_version=0, update=ev.BlobRef(uri="file:///x", sha256="a" * 64, size=1), num_examples=1,
            train_loss=0.5)

    def sign(event, private=A_KEY, at=T0):
        return signing.sign(event, "fedstream.submissions", private, at)

    a, a_revoked = view(A_KEY, "a"), view(A_KEY, "a", revoked=True)
    cases = [
        (sign(submission()), a), (submission(), a), (sign(submission()), None), (sign(submission()), a_revoked),
        (sign(submission("b")), a), (sign(submission(source="participant/b")), a),
        (sign(submission()).model_copy(update={"round": 2}), a), (sign(submission(), at=T0 - 2 * WINDOW), a),
    ]
    for event, key in cases:
        kv = None if key is None else KeyView(key.key_id, key.participant_id, "org", key.public_key, key.revoked)
        rejection = check_signer(event, kv, T0, IdentityPolicy(freshness_s=WINDOW.total_seconds()))
        ours = reason(event, key, topic="fedstream.submissions")
        assert (None if rejection is None else rejection.reason.value) == (None if ours is None else ours.value)
