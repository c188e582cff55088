"""W3C trace context carried in Kafka headers.

The observability issue plugs OpenTelemetry in; until then every emitted event continues the trace of
the message that caused it (same trace id, new span id), so one round is already one trace id.
"""

from __future__ import annotations

import re
import secrets

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def child_traceparent(parent: str | None) -> str:
    """A new span in the parent's trace; a fresh trace when the parent is absent or invalid."""
    match = _TRACEPARENT.match(parent or "")
    if not match:
        return new_traceparent()
    return f"00-{match.group(1)}-{secrets.token_hex(8)}-{match.group(3)}"
