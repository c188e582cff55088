"""Homomorphic-encryption parameters of a federation (``crypto: he``), validated at the edge.

Security: the total coefficient-modulus size may not exceed what the Homomorphic Encryption Security
Standard (Albrecht et al., HomomorphicEncryption.org, 2018, Table 1: ternary secret, classical attacks)
allows for 128-bit security at the chosen polynomial degree. The checked level is written back into the
spec (``security_bits``), so the spec's output says what it was validated for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from schemas.base import Frozen

# HE standard, Table 1 (128-bit, ternary secret, classical): largest log2(q) per polynomial degree.
MAX_COEFF_BITS_128: dict[int, int] = {1024: 27, 2048: 54, 4096: 109, 8192: 218, 16384: 438, 32768: 881}

CKKS_DEFAULT_MODULI = (60, 40, 60)  # one data prime of 40 bits above a 60-bit base; the last is SEAL's special prime
BFV_DEFAULT_MODULI = (43, 43, 44, 44, 44)  # SEAL's BFVDefault(8192): 218 bits


class HeScheme(StrEnum):
    CKKS = "ckks"  # approximate arithmetic on real numbers: real-valued updates (the default)
    BFV = "bfv"  # exact arithmetic modulo t: integer (quantised) updates


class HeSpec(Frozen):
    """Scheme and encryption parameters. ``coeff_mod_bit_sizes`` empty means the scheme's default above."""

    scheme: HeScheme = HeScheme.CKKS
    poly_modulus_degree: Literal[4096, 8192, 16384, 32768] = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = ()
    global_scale_bits: int = Field(default=40, ge=20, le=60)  # CKKS: the encoding scale is 2**bits
    plain_modulus_bits: int = Field(default=50, ge=17, le=60)  # BFV: t, a batching prime of this many bits
    quantisation_bits: int = Field(default=16, ge=1, le=30)  # BFV: an update value w is sent as round(w·2**bits)
    security_bits: Literal[128] = 128
    # DP-SGD at each participant before encryption (the two compose: noise first, then encryption).
    local_dp: bool = False

    @field_validator("coeff_mod_bit_sizes", mode="before")
    @classmethod
    def _list_as_tuple(cls, value: object) -> object:
        return tuple(value) if isinstance(value, list) else value

    @model_validator(mode="after")
    def _secure_and_consistent(self) -> "HeSpec":
        moduli = self.moduli
        if any(not 17 <= bits <= 60 for bits in moduli):
            raise ValueError("every coefficient modulus prime must have 17 to 60 bits (SEAL's range)")
        ceiling = MAX_COEFF_BITS_128[self.poly_modulus_degree]
        if sum(moduli) > ceiling:
            raise ValueError(
                f"coefficient moduli total {sum(moduli)} bits; 128-bit security at poly_modulus_degree "
                f"{self.poly_modulus_degree} allows at most {ceiling} (HE standard, Table 1)"
            )
        if self.scheme is HeScheme.CKKS:
            _check_ckks(moduli, self.global_scale_bits)
        elif len(moduli) < 2:
            raise ValueError("BFV needs at least two coefficient moduli primes")
        return self

    @property
    def moduli(self) -> tuple[int, ...]:
        if self.coeff_mod_bit_sizes:
            return self.coeff_mod_bit_sizes
        return CKKS_DEFAULT_MODULI if self.scheme is HeScheme.CKKS else BFV_DEFAULT_MODULI

    @property
    def slots(self) -> int:
        """Values packed into one ciphertext: N/2 for CKKS, N for BFV."""
        return self.poly_modulus_degree // 2 if self.scheme is HeScheme.CKKS else self.poly_modulus_degree


def _check_ckks(moduli: tuple[int, ...], scale_bits: int) -> None:
    """The aggregate is Σ (n_k/N)·c_k without rescaling: its scale is 2**(2·scale_bits), which must fit
    under the data primes (all but SEAL's special last prime) with room for the values themselves."""
    if len(moduli) < 2:
        raise ValueError("CKKS needs at least two coefficient moduli primes (data primes + a special prime)")
    data_bits = sum(moduli[:-1])
    if 2 * scale_bits + 10 > data_bits:
        raise ValueError(
            f"global_scale_bits {scale_bits}: a weighted sum has scale 2**{2 * scale_bits}, which needs data "
            f"primes of at least {2 * scale_bits + 10} bits (these have {data_bits})"
        )
    if moduli[-1] < max(moduli[:-1]):
        raise ValueError("the last (special) prime must be at least as large as every data prime")
