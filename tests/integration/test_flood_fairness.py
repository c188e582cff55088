"""A participant flooding ingestion is served in turn with the others, not ahead of them (real stack).

Kafka orders a partition strictly and every submission of a federation shares one: handled front to
back, the others' submissions would wait for the whole flood. Ingestion's lanes serve each sender in
turn, so a submission that arrives behind a flood is decided long before the flood is. (How long it
waits in time is a benchmark figure, `python -m bench.flood`; here only the order, which could fail.)"""

from __future__ import annotations

from uuid import uuid4

import pytest

from fedstream.messaging.codec import encode
from fedstream.messaging.kafka import send_records
from fedstream.storage import tensors
from schemas import events as ev
from schemas.topics import SUBMISSIONS
from tests.integration.harness import Submitter
from tests.integration.test_bad_input import small_spec, start

pytestmark = pytest.mark.integration
FLOOD = 400


def submission(federation_id: str, participant: str, ref: ev.BlobRef) -> ev.UpdateSubmitted:
    return ev.UpdateSubmitted(
        source=f"participant/{participant}", federation_id=federation_id, update_id=uuid4(), participant_id=participant,
        round=1, base_model_version=0, update=ref, num_examples=10, train_loss=0.5,
    )


def decisions(log, wanted: set) -> list:  # noqa: ANN001 - a TopicLog
    return [e for e in log.events() if isinstance(e, (ev.UpdateAccepted, ev.UpdateRejected)) and e.update_id in wanted]


async def test_a_submission_behind_a_flood_is_decided_before_most_of_the_flood(stack):
    spec = small_spec(f"flood-{uuid4().hex[:8]}", quorum=3, round_deadline_s=300)
    log, initial = await start(stack, spec)
    try:
        async with Submitter(stack.endpoints, spec.federation_id) as sub:
            await sub.enrol("a", "b")
            ref = await sub.blobs.put(tensors.to_bytes({k: v + 0.5 for k, v in initial.items()}))
            flood = [sub.keys.sign(submission(spec.federation_id, "a", ref)) for _ in range(FLOOD)]
            honest = sub.keys.sign(submission(spec.federation_id, "b", ref))
            # one producer, in order: the honest submission lands behind the whole flood in the partition
            await send_records(sub.producer, [encode(e, SUBMISSIONS.name) for e in [*flood, honest]])
            wanted = {e.update_id for e in flood} | {honest.update_id}
            await log.wait_for(lambda log: len(decisions(log, wanted)) == len(wanted), timeout=120)
    finally:
        await log.__aexit__(None, None, None)
    decided = decisions(log, wanted)
    position = [d.update_id for d in decided].index(honest.update_id)
    assert isinstance(decided[position], ev.UpdateAccepted)
    assert position < FLOOD // 2, f"decided after {position} of the flood's {FLOOD}"
    reasons = {d.reason for d in decided if isinstance(d, ev.UpdateRejected)}
    assert reasons <= {ev.RejectionReason.DUPLICATE, ev.RejectionReason.RATE_LIMITED}  # the flood is refused, cheaply
