"""Builders shared by the unit tests."""

from __future__ import annotations

from uuid import uuid4

import numpy as np

from fedstream.messaging.codec import Record, decode
from fedstream.storage import tensors
from fedstream.storage.blobs import InMemoryBlobStore
from schemas import events as ev
from schemas.base import BlobRef

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
