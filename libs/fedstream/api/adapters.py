"""PostgreSQL and Kafka adapters of the API's ports.

Reads go through ``tenant_transaction``: the caller's database role and tenant, so PostgreSQL's
row-level security, not this code, decides which rows a site operator gets.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from fedstream.api.auth import Principal, User
from fedstream.api.ports import PublishFailed
from fedstream.api.models import AuditRowOut, FederationOut, LedgerOut, ParticipantOut, ReleaseOut, RoundOut, VerifyOut
from fedstream.api.totp_secrets import SealedSecretInvalid, TotpSecretSealer
from fedstream.messaging.codec import encode
from fedstream.messaging.kafka import send_records
from fedstream.storage.tenancy import tenant_transaction
from schemas.access import ApiRole
from schemas.base import Event
from schemas.topics import topic_for

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT_S = 10.0
MAX_ROWS = 10_000  # one response stays bounded; the audit trail pages with ?after_seq=


class PostgresUserDirectory:
    """Users in ``admin_api.users``; their TOTP secrets sealed (fedstream.api.totp_secrets), never in plaintext."""

    def __init__(self, pool: asyncpg.Pool, secrets: TotpSecretSealer) -> None:
        self.pool, self.secrets = pool, secrets

    async def by_token_hash(self, token_sha256: str) -> User | None:
        row = await self.pool.fetchrow(
            "SELECT user_id, role, tenant, totp_secret_sealed, disabled FROM admin_api.users WHERE token_sha256 = $1",
            token_sha256,
        )
        if row is None:
            return None
        return User(row["user_id"], ApiRole(row["role"]), row["tenant"], await self._open(row), row["disabled"])

    async def _open(self, row: asyncpg.Record) -> str | None:
        """None: no second factor (none issued since migration 020, or it no longer opens) — privileged
        actions refuse the user; plain reads still work."""
        if row["totp_secret_sealed"] is None:
            return None
        try:
            return await self.secrets.open_async(row["user_id"], row["totp_secret_sealed"])
        except SealedSecretInvalid:
            log.exception("user %s: TOTP secret unusable, re-issue it (fedstream api user rotate-totp)", row["user_id"])
            return None

    async def spend_totp_step(self, user_id: str, step: int) -> bool:
        # One statement: two requests racing with the same code cannot both spend it.
        return bool(await self.pool.fetchval(
            "UPDATE admin_api.users SET totp_last_step = $2 "
            "WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING true", user_id, step,
        ))

    async def add(self, user_id: str, role: ApiRole, tenant: str | None, token_sha256: str, totp_secret: str) -> None:
        sealed = await self.secrets.seal_async(user_id, totp_secret)
        await self.pool.execute(
            "INSERT INTO admin_api.users (user_id, role, tenant, token_sha256, totp_secret_sealed) VALUES ($1, $2, $3, $4, $5)",
            user_id, role.value, tenant, token_sha256, sealed,
        )

    async def replace_totp_secret(self, user_id: str, totp_secret: str) -> bool:
        """A new second factor for an existing user; False if there is no such user."""
        sealed = await self.secrets.seal_async(user_id, totp_secret)
        return bool(await self.pool.fetchval(
            "UPDATE admin_api.users SET totp_secret_sealed = $2 WHERE user_id = $1 RETURNING true", user_id, sealed
        ))

    async def users_without_totp(self) -> list[str]:
        rows = await self.pool.fetch(
            "SELECT user_id FROM admin_api.users WHERE totp_secret_sealed IS NULL AND NOT disabled ORDER BY user_id"
        )
        return [r["user_id"] for r in rows]


class PostgresReadStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def _fetch(self, who: Principal, sql: str, *args: object) -> list[asyncpg.Record]:
        async with tenant_transaction(self.pool, who.db_role, who.tenant, readonly=True) as conn:
            return await conn.fetch(sql, *args)

    async def federations(self, who: Principal) -> list[FederationOut]:
        rows = await self._fetch(who, "SELECT federation_id, project_name, use_case, crypto, created_at, completed_at, "
                                      f"completion_reason, rounds_run FROM federations ORDER BY created_at DESC LIMIT {MAX_ROWS}")
        return [FederationOut(**r) for r in rows]

    async def rounds(self, who: Principal, federation_id: str) -> list[RoundOut]:
        rows = await self._fetch(who, "SELECT round, status, model_version, contributors, opened_at, duration_s::float8 AS duration_s "
                                      f"FROM round_status WHERE federation_id = $1 ORDER BY round LIMIT {MAX_ROWS}", federation_id)
        return [RoundOut(**r) for r in rows]

    async def releases(self, who: Principal, federation_id: str) -> list[ReleaseOut]:
        rows = await self._fetch(who, "SELECT version, round, sha256, size, released_at FROM model_versions "
                                      f"WHERE model_id = $1 ORDER BY version LIMIT {MAX_ROWS}", federation_id)
        return [ReleaseOut(**r) for r in rows]

    async def participants(self, who: Principal, federation_id: str) -> list[ParticipantOut]:
        rows = await self._fetch(who, "SELECT participant_id, organisation, kind, enrolled_at FROM participants "
                                      f"WHERE federation_id = $1 ORDER BY participant_id LIMIT {MAX_ROWS}", federation_id)
        return [ParticipantOut(**r) for r in rows]

    async def ledger(self, who: Principal, federation_id: str) -> list[LedgerOut]:
        rows = await self._fetch(
            who, "SELECT participant_id, dataset_id, charges, last_round, epsilon_spent, epsilon_remaining, budget_epsilon, "
                 "budget_delta, exhausted FROM privacy_budget_remaining WHERE federation_id = $1 "
                 f"ORDER BY participant_id, dataset_id LIMIT {MAX_ROWS}", federation_id)
        return [LedgerOut(**r) for r in rows]

    async def audit_trail(self, who: Principal, after_seq: int, limit: int) -> list[AuditRowOut]:
        rows = await self._fetch(
            who, "SELECT seq, event_id, event_type, topic, federation_id, round, source, occurred_at, payload_sha256, "
                 "prev_hash, row_hash FROM audit_trail WHERE seq > $1 ORDER BY seq LIMIT $2", after_seq, limit)
        return [AuditRowOut(**r) for r in rows]

    async def verify_audit_trail(self, who: Principal) -> VerifyOut:
        from services.compliance.adapters import read_chain
        from services.compliance.domain import verify

        async with tenant_transaction(self.pool, who.db_role, who.tenant, readonly=True) as conn:
            rows = [r async for r in read_chain(conn)]
        broken = verify(rows)
        return VerifyOut(rows=len(rows), head=rows[-1].row_hash if rows else None, intact=broken is None,
                         broken_seq=broken.seq if broken else None, problem=broken.problem if broken else None)

    async def organisation_of(self, who: Principal, participant_id: str) -> str | None:
        rows = await self._fetch(who, "SELECT organisation FROM participant_enrolments WHERE participant_id = $1", participant_id)
        return rows[0]["organisation"] if rows else None


class KafkaPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer

    async def publish(self, event: Event) -> str:
        topic = topic_for(type(event)).name
        try:
            await asyncio.wait_for(send_records(self.producer, [encode(event, topic)]), PUBLISH_TIMEOUT_S)
        except (KafkaError, TimeoutError) as exc:
            raise PublishFailed(f"{event.TYPE} not acknowledged: {exc!r}") from exc
        return topic
