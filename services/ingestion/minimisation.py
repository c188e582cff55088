"""Data minimisation at the edge: a submission carrying fields beyond its schema is refused with the
machine-readable reason ``extra_fields`` (and the names of those fields), instead of vanishing into the
dead-letter topic. Anything else that does not decode is still dead-lettered."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from fedstream.messaging.codec import Record
from schemas.base import derived_id
from schemas.events import RejectionReason, UpdateRejected, UpdateSubmitted
from schemas.topics import INGESTION


def extra_fields_rejection(record: Record) -> UpdateRejected | None:
    """The rejection for a submission whose only fault is extra fields; None for any other record."""
    if record.header("ce_type") != UpdateSubmitted.TYPE:
        return None
    try:
        UpdateSubmitted.model_validate_json(record.value)
        return None
    except ValidationError as exc:
        errors = exc.errors()
    if any(e["type"] != "extra_forbidden" for e in errors):
        return None
    data = json.loads(record.value)
    extras = [e["loc"] for e in errors]
    for loc in extras:
        _drop(data, loc)
    try:
        envelope = UpdateSubmitted.model_validate_json(json.dumps(data))
    except ValidationError:
        return None
    if record.key != envelope.federation_id.encode():
        return None
    names = ", ".join(".".join(map(str, loc)) for loc in extras)
    return UpdateRejected(
        event_id=derived_id(envelope.event_id, "extra_fields"), source=INGESTION, federation_id=envelope.federation_id,
        update_id=envelope.update_id, participant_id=envelope.participant_id, round=envelope.round,
        reason=RejectionReason.EXTRA_FIELDS, detail=f"fields beyond the schema are not accepted: {names}"[:2000],
    )


def _drop(data: Any, loc: tuple) -> None:
    *parents, last = loc
    for part in parents:
        data = data[part]
    del data[last]
