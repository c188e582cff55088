"""Builders shared by the unit tests."""

from __future__ import annotations

from uuid import uuid4

import numpy as np

from fedstream.messaging.codec import Record, decode
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from schemas import events as ev
from schemas.base import BlobRef
from schemas.identity import BaaRegistered, ConsentRecorded, ParticipantEnrolled

PARAMS_SHAPES = {"0.weight": (1, 3), "0.bias": (1,)}


def weights(value: float = 0.0) -> dict[str, np.ndarray]:
    return {name: np.full(shape, value, np.float32) for name, shape in PARAMS_SHAPES.items()}


async def put_weights(blobs: InMemoryBlobStore, w: dict[str, np.ndarray]) -> BlobRef:
    return await blobs.put(tensors.to_bytes(w))


def emitted(records: list[Record]) -> list[ev.Event]:
    return [decode(r) for r in records if r.topic != "fedstream.deadletter"]


def charged(participant: str, ref: BlobRef, n: int = 10, round_number: int = 1, federation: str = "f") -> ev.PrivacyCharged:
    return ev.PrivacyCharged(source="privacy-accounting", federation_id=federation, update_id=uuid4(),
                             participant_id=participant, round=round_number, update=ref, num_examples=n)


def identity_facts(participant: str, public_key: str, now, organisation: str | None = None, days: int = 365) -> list[ev.Event]:
    """What the registry publishes once a participant is enrolled, consents to training and its
    organisation has a BAA: the facts ingestion admits on."""
    from datetime import timedelta

    from fedstream.security.signing import key_id_of

    org = organisation or f"org-{participant}"
    expires = now + timedelta(days=days)
    return [
        ParticipantEnrolled(source="registry", federation_id=org, participant_id=participant, organisation=org,
                            key_id=key_id_of(public_key), public_key=public_key),
        ConsentRecorded(source="registry", federation_id=org, participant_id=participant, purpose="federated_training",
                        scope="*", expires_at=expires, granted=True),
        BaaRegistered(source="registry", federation_id=org, organisation=org, reference="baa-1", expires_at=expires, active=True),
    ]
