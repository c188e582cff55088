"""RFC 8785 JSON Canonicalization Scheme: one byte string per JSON value, whoever serialises it.

Signatures are over these bytes, so signer and verifier agree without sharing a serialiser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import rfc8785


def canonical_json(value: Any) -> bytes:
    return rfc8785.dumps(value)


def timestamp(moment: datetime) -> str:
    """A datetime as one exact string (UTC, microseconds), whatever offset it was written with."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
