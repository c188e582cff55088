"""Homomorphic encryption of model updates as pure functions over TenSEAL (Microsoft SEAL).

A flat vector of P values is packed into ⌈P / slots⌉ full-slot ciphertexts and framed as one blob::

    b"FSHE" 0x01 | u32 header length | JSON header | ciphertext 1 | ciphertext 2 | …

The header names the scheme, the vector length, each ciphertext's byte length and the *context
fingerprint* (SHA-256 of the public context), so a blob made under another federation's keys, a
truncated blob or a mangled frame fails with a named error before any arithmetic. (A ciphertext whose
coefficients were altered in range cannot be told from a genuine one by its bytes: the claim check's
SHA-256 and the participant's signature are what protect those.)

The aggregator holds only the public context: it multiplies each update by a plaintext scalar (its
FedAvg weight) and adds. CKKS sums are kept unrescaled (scale 2**(2·s)), which is cheap and leaves
the weighted average exact up to CKKS's encoding error. BFV sums are exact modulo t.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import tenseal as ts
import tenseal.sealapi as sealapi

from fedstream.crypto.he_frame import (  # noqa: F401 - re-exported: one module to import for HE
    MAGIC,
    MEDIA_TYPE,
    CiphertextError,
    ForeignContext,
    Header,
    LengthMismatch,
    MalformedCiphertext,
    check_header,
    read_header,
)
from schemas.he import HeScheme, HeSpec


class SecretKeyPresent(RuntimeError):
    """A context that must be public carries a secret key."""


# --- contexts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FederationContext:
    """A TenSEAL context and its fingerprint: the SHA-256 of the public context as first serialised.

    The fingerprint is fixed when the keys are made and travels with them (SEAL's serialisation of a
    context is not stable once it has been used, so it is never recomputed from a used context)."""

    ctx: ts.Context
    fingerprint: str

    @property
    def scheme(self) -> HeScheme:
        return HeScheme.CKKS if _parms(self.ctx).scheme().name == "CKKS" else HeScheme.BFV

    @property
    def slots(self) -> int:
        n = _parms(self.ctx).poly_modulus_degree()
        return n // 2 if self.scheme is HeScheme.CKKS else n

    @property
    def has_secret_key(self) -> bool:
        return self.ctx.has_secret_key()


def make_context(spec: HeSpec) -> tuple[FederationContext, bytes]:
    """Fresh keys (SEAL samples them from its CSPRNG, seeded by the OS's random device) and the public context's bytes."""
    if spec.scheme is HeScheme.CKKS:
        ctx = ts.context(ts.SCHEME_TYPE.CKKS, spec.poly_modulus_degree, coeff_mod_bit_sizes=list(spec.moduli))
        ctx.global_scale = 2.0**spec.global_scale_bits
    else:
        t = sealapi.PlainModulus.Batching(spec.poly_modulus_degree, spec.plain_modulus_bits).value()
        ctx = ts.context(ts.SCHEME_TYPE.BFV, spec.poly_modulus_degree, plain_modulus=t,
                         coeff_mod_bit_sizes=list(spec.moduli))
    public = ctx.serialize(save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False)
    return FederationContext(_configured(ctx), hashlib.sha256(public).hexdigest()), public


def secret_bytes(fc: FederationContext) -> bytes:
    if not fc.has_secret_key:
        raise ValueError("this context holds no secret key")
    return fc.ctx.serialize(save_public_key=True, save_secret_key=True, save_galois_keys=False, save_relin_keys=False)


def load_secret_context(data: bytes, fingerprint: str) -> FederationContext:
    fc = FederationContext(_load(data), fingerprint)
    if not fc.has_secret_key:
        raise ValueError("this keyfile holds no secret key")
    return fc


def load_public_context(data: bytes) -> FederationContext:
    """Load a context that must not be able to decrypt; refuses one that carries a secret key."""
    ctx = _load(data)
    if ctx.has_secret_key():
        raise SecretKeyPresent("a public context was expected, but this one holds a secret key")
    return FederationContext(ctx, hashlib.sha256(data).hexdigest())


def _load(data: bytes) -> ts.Context:
    try:
        return _configured(ts.context_from(data))
    except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError on bad bytes
        raise MalformedCiphertext(f"not a TenSEAL context: {exc}") from None


def _parms(ctx: ts.Context):  # noqa: ANN202 - SEAL's EncryptionParameters
    return ctx.seal_context().data.first_context_data().parms()


def _configured(ctx: ts.Context) -> ts.Context:
    if _parms(ctx).scheme().name == "CKKS":
        ctx.auto_rescale = False  # sums of scalar products need no rescale; skipping it is most of the cost
    return ctx


def check(data: bytes, fc: FederationContext, expected_length: int) -> Header:
    """Admission: right frame, right context, right size; the ciphertexts themselves are parsed on use."""
    return check_header(data, fc.fingerprint, fc.scheme, fc.slots, expected_length)


# --- framing, encrypt, sum, decrypt ---------------------------------------------------------------------


def encrypt(fc: FederationContext, values: np.ndarray) -> bytes:
    """Pack ``values`` (float for CKKS, integer for BFV) into full-slot ciphertexts and frame them."""
    flat = np.ravel(values)
    slots, scheme = fc.slots, fc.scheme
    if scheme is HeScheme.BFV and not np.issubdtype(flat.dtype, np.integer):
        raise TypeError("BFV encrypts integers: quantise the update first")
    make = ts.ckks_vector if scheme is HeScheme.CKKS else ts.bfv_vector
    chunks = [make(fc.ctx, flat[i : i + slots].tolist()).serialize() for i in range(0, len(flat), slots)]
    return frame(fc, len(flat), chunks)


def frame(fc: FederationContext, length: int, chunks: Sequence[bytes]) -> bytes:
    header = Header(fc.scheme, fc.fingerprint, length, tuple(len(c) for c in chunks))
    return header.to_bytes() + b"".join(chunks)


def vectors(data: bytes, fc: FederationContext, expected_length: int) -> list:
    """The checked blob's ciphertexts, deserialised under ``fc``."""
    header = check(data, fc, expected_length)
    _, offset = read_header(data)
    load = ts.ckks_vector_from if header.scheme is HeScheme.CKKS else ts.bfv_vector_from
    out = []
    for size in header.chunks:
        try:
            out.append(load(fc.ctx, data[offset : offset + size]))
        except Exception as exc:  # SEAL validates sizes and coefficient ranges on load
            raise MalformedCiphertext(f"ciphertext {len(out) + 1} does not load: {exc}") from None
        offset += size
    return out


def weighted_sum(fc: FederationContext, blobs: Iterable[bytes], weights: Sequence[float | int], length: int) -> bytes:
    """Σ weightₖ·ciphertextₖ, framed; plaintext-scalar multiplication and addition only (no secret key).

    ``blobs`` may be a generator: one update at a time is held in memory besides the running sum."""
    total: list | None = None
    for blob, weight in zip(blobs, weights, strict=True):
        scaled = vectors(blob, fc, length)
        for v in scaled:
            v.mul_(weight)  # in place: a plaintext-scalar product, no copy
        total = scaled if total is None else [_add_into(a, b) for a, b in zip(total, scaled)]
    if total is None:
        raise ValueError("need at least one ciphertext")
    return frame(fc, length, [v.serialize() for v in total])


def add_sums(fc: FederationContext, sums: Sequence[bytes], length: int) -> bytes:
    """Σ of already-weighted partial sums (what each worker process returns)."""
    if len(sums) == 1:
        return sums[0]
    total: list | None = None
    for blob in sums:
        vs = vectors(blob, fc, length)
        total = vs if total is None else [_add_into(a, b) for a, b in zip(total, vs)]
    return frame(fc, length, [v.serialize() for v in total])


def decrypt(secret: FederationContext, data: bytes, length: int) -> np.ndarray:
    if not secret.has_secret_key:
        raise ValueError("decryption needs the secret context")
    parts = [np.asarray(v.decrypt()) for v in vectors(data, secret, length)]
    return np.concatenate(parts)[:length]


def _add_into(a, b):  # noqa: ANN001, ANN202 - TenSEAL vectors
    a += b
    return a


# --- BFV quantisation --------------------------------------------------------------------------


def quantise(values: np.ndarray, bits: int) -> np.ndarray:
    """w → round(w·2**bits) as int64: what a BFV federation encrypts (and what its exact sum is of)."""
    return np.rint(np.asarray(values, np.float64) * 2.0**bits).astype(np.int64)


def dequantise(values: np.ndarray, bits: int) -> np.ndarray:
    return np.asarray(values, np.float64) / 2.0**bits
