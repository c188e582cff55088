"""Ed25519 over the RFC 8785 canonical form; participant key files."""

import os
import stat
from datetime import UTC, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from fedstream.security import keyfiles, signing
from fedstream.security.canonical import canonical_json, timestamp
from fedstream.security.rate_limit import BucketPolicy, take
from schemas import events as ev

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def submission(**changes) -> ev.UpdateSubmitted:
    fields = dict(source="participant/a", federation_id="f", update_id=uuid4(), participant_id="a", round=1,
                  base_model_version=0, update=ev.BlobRef(uri="file:///x", sha256="a" * 64, size=10), num_examples=5,
                  train_loss=0.1 + 0.2)
    return ev.UpdateSubmitted(**(fields | changes))


def test_canonical_json_is_rfc_8785():
    # keys sorted by UTF-16 code units, no whitespace, ES6 number forms
    assert canonical_json({"b": 1, "a": [1e21, 0.30000000000000004, "é"]}) == '{"a":[1e+21,0.30000000000000004,"é"],"b":1}'.encode()


def test_a_moment_has_one_timestamp_whatever_its_offset():
    assert timestamp(T0) == timestamp(T0.astimezone(timezone(timedelta(hours=5)))) == "2026-03-01T12:00:00.000000+00:00"


def test_a_signature_verifies_and_binds_every_field_but_the_transport_id():
    key = signing.generate_key()
    event = signing.sign(submission(), "fedstream.submissions", key, T0)
    public = signing.public_key_text(key)
    assert signing.verify(event, "fedstream.submissions", public)
    assert signing.verify(event.model_copy(update={"event_id": uuid4()}), "fedstream.submissions", public)
    assert not signing.verify(event, "fedstream.heartbeats", public)  # another topic
    for change in ({"round": 2}, {"participant_id": "b"}, {"federation_id": "g"}, {"train_loss": 0.31}, {"source": "x"},
                   {"signature": event.signature.model_copy(update={"nonce": "0" * 32})},
                   {"signature": event.signature.model_copy(update={"signed_at": T0 + timedelta(microseconds=1)})}):
        assert not signing.verify(event.model_copy(update=change), "fedstream.submissions", public), change


def test_another_key_does_not_verify():
    event = signing.sign(submission(), "fedstream.submissions", signing.generate_key(), T0)
    assert not signing.verify(event, "fedstream.submissions", signing.public_key_text(signing.generate_key()))
    assert not signing.verify(submission(), "fedstream.submissions", signing.public_key_text(signing.generate_key()))


def test_each_signature_has_a_fresh_nonce():
    key = signing.generate_key()
    event = submission()
    nonces = {signing.sign(event, "t", key, T0).signature.nonce for _ in range(50)}
    assert len(nonces) == 50


def test_key_files_are_private_and_reused(tmp_path):
    path = keyfiles.key_path(tmp_path, "hospital-a")
    key, created = keyfiles.load_or_create(path)
    assert created and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again, created_again = keyfiles.load_or_create(path)
    assert not created_again and signing.public_key_text(again) == signing.public_key_text(key)
    os.chmod(path, 0o644)
    with pytest.raises(keyfiles.KeyFileError):
        keyfiles.load_key(path)


def test_token_bucket_allows_a_burst_then_the_rate():
    policy = BucketPolicy(rate_per_s=2, burst=3)
    tokens, verdicts = None, []
    for _ in range(4):
        allowed, tokens = take(tokens, 0.0, 0.0, policy)
        verdicts.append(allowed)
    assert verdicts == [True, True, True, False]
    assert take(tokens, 0.0, 0.5, policy)[0] is True  # half a second refills one token


def test_a_key_file_name_is_never_a_path(tmp_path):
    with pytest.raises(keyfiles.KeyFileError):
        keyfiles.key_path(tmp_path, "../../etc/x")
