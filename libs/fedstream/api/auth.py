"""Who is calling, and may they: bearer tokens, roles, and a TOTP second factor for privileged actions.

Tokens are 256-bit random strings, stored only as their SHA-256. TOTP secrets are stored sealed
(fedstream.api.totp_secrets). A TOTP code is accepted once: the directory remembers the last time step
each user spent, so an overheard code cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp

from fedstream.storage.tenancy import DbRole
from schemas.access import ApiRole

TOTP_SKEW_STEPS = 1  # accept the previous and the next 30 s step too: clocks drift

DB_ROLE: dict[ApiRole, DbRole] = {
    ApiRole.ADMIN: DbRole.ADMIN,
    ApiRole.AUDITOR: DbRole.AUDITOR,
    ApiRole.DPO: DbRole.DPO,
    ApiRole.SITE_OPERATOR: DbRole.TENANT,
}


@dataclass(frozen=True)
class User:
    user_id: str
    role: ApiRole
    tenant: str | None
    totp_secret: str | None  # None: no second factor issued (or it no longer opens): no privileged action
    disabled: bool = False


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the role decides the routes, the tenant (site operators) the rows."""

    user_id: str
    role: ApiRole
    tenant: str | None

    @property
    def db_role(self) -> DbRole:
        return DB_ROLE[self.role]


@dataclass(frozen=True)
class IssuedCredentials:
    """Shown once, when a user is added: only the token's hash and the sealed TOTP secret are stored."""

    token: str
    totp_secret: str
    provisioning_uri: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_credentials(user_id: str) -> IssuedCredentials:
    secret, uri = issue_totp_secret(user_id)
    return IssuedCredentials(secrets.token_urlsafe(32), secret, uri)


def issue_totp_secret(user_id: str) -> tuple[str, str]:
    """A new TOTP secret and its provisioning URI (for an authenticator app's QR code)."""
    secret = pyotp.random_base32()
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user_id, issuer_name="fedstream")


def totp_step(secret: str | None, code: str, now: float) -> int | None:
    """The time step ``code`` is valid for at ``now`` (within the allowed skew), or None (also without a secret)."""
    if secret is None or not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now // totp.interval)
    for step in range(current - TOTP_SKEW_STEPS, current + TOTP_SKEW_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None
