"""Which lane a record waits in (fedstream.messaging.fair): participants' messages by sender.

A participant's submissions and heartbeats queue in their own lane, so a flood from one participant is
served one message per turn like everyone else's instead of ahead of them; everything else (rounds,
identity facts, aggregates) keeps its partition's order. The sender is what the record claims
(its CloudEvents source): scheduling happens before the signature is checked, so a claim only decides
whose turn a message waits for. Claims of senders outside a federation share one lane per federation,
and records of federations this process does not know yet share one lane, so inventing senders or
federations cannot open lanes without bound.
"""

from __future__ import annotations

from collections.abc import Callable

from fedstream.messaging.codec import Record
from schemas.topics import HEARTBEATS, PARTICIPANT, SUBMISSIONS

SENDER_TOPICS = frozenset({SUBMISSIONS.name, HEARTBEATS.name})
SOURCE_PREFIX = f"/fedstream/{PARTICIPANT}/"
UNKNOWN_FEDERATIONS = "senders:unknown-federation"


def lane_of(record: Record, participants_of: Callable[[str], frozenset[str] | None]) -> str | None:
    if record.topic not in SENDER_TOPICS:
        return None
    federation = record.key.decode("utf-8", errors="replace")
    members = participants_of(federation)
    if members is None:
        return UNKNOWN_FEDERATIONS
    source = record.header("ce_source") or ""
    sender = source[len(SOURCE_PREFIX):] if source.startswith(SOURCE_PREFIX) else None
    if sender in members:
        return f"sender:{federation}/{sender}"
    return f"senders:{federation}/outsiders"
