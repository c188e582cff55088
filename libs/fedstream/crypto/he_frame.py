"""The frame of an HE ciphertext blob, readable without TenSEAL (ingestion checks it cheaply)::

    b"FSHE" 0x01 | u32 header length | JSON header | ciphertext 1 | ciphertext 2 | …
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

from schemas.he import HeScheme

MAGIC = b"FSHE\x01"
MEDIA_TYPE = "application/vnd.fedstream.he-ciphertext"
_HEADER_LEN = struct.Struct(">I")
_MAX_HEADER = 1 << 20


class CiphertextError(ValueError):
    """A ciphertext blob that cannot be used; ``reason`` is machine-readable."""

    reason = "malformed_ciphertext"


class MalformedCiphertext(CiphertextError):
    reason = "malformed_ciphertext"


class ForeignContext(CiphertextError):
    """Made under another context (another federation's keys, or other parameters)."""

    reason = "wrong_context"


class LengthMismatch(CiphertextError):
    reason = "shape_mismatch"


@dataclass(frozen=True)
class Header:
    scheme: HeScheme
    context: str  # fingerprint
    length: int  # values packed
    chunks: tuple[int, ...]  # byte length of each ciphertext

    def to_bytes(self) -> bytes:
        body = json.dumps({"scheme": self.scheme.value, "context": self.context, "length": self.length,
                           "chunks": list(self.chunks)}, separators=(",", ":")).encode()
        return MAGIC + _HEADER_LEN.pack(len(body)) + body


def read_header(data: bytes) -> tuple[Header, int]:
    """The frame's header and where the ciphertexts start; checks the frame adds up, not the ciphertexts."""
    if not data.startswith(MAGIC):
        raise MalformedCiphertext("not a fedstream HE ciphertext (bad magic)")
    start = len(MAGIC) + _HEADER_LEN.size
    if len(data) < start:
        raise MalformedCiphertext("truncated before the header")
    (size,) = _HEADER_LEN.unpack_from(data, len(MAGIC))
    if size > _MAX_HEADER or len(data) < start + size:
        raise MalformedCiphertext("truncated or oversized header")
    try:
        raw = json.loads(data[start : start + size])
        header = Header(HeScheme(raw["scheme"]), str(raw["context"]), int(raw["length"]),
                        tuple(int(c) for c in raw["chunks"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise MalformedCiphertext(f"unreadable header: {exc}") from None
    body = start + size
    if any(c <= 0 for c in header.chunks) or sum(header.chunks) != len(data) - body:
        raise MalformedCiphertext(
            f"the header lists {sum(header.chunks)} ciphertext bytes, the blob carries {len(data) - body} (truncated?)"
        )
    return header, body


def check_header(data: bytes, fingerprint: str | None, scheme: HeScheme, slots: int, expected_length: int) -> Header:
    """``check`` for a caller without a TenSEAL context; ``fingerprint`` None skips the context check."""
    header, _ = read_header(data)
    if fingerprint is not None and header.context != fingerprint:
        raise ForeignContext(
            f"made under context {header.context[:12]}…, this federation's is {fingerprint[:12]}…; "
            "was it encrypted with another federation's public context?"
        )
    if header.scheme is not scheme:
        raise ForeignContext(f"a {header.scheme.value} ciphertext for a {scheme.value} federation")
    if header.length != expected_length:
        raise LengthMismatch(f"packs {header.length} values, the model has {expected_length}")
    if len(header.chunks) != math.ceil(expected_length / slots):
        raise LengthMismatch(f"{len(header.chunks)} ciphertexts do not pack {expected_length} values at {slots} each")
    return header
