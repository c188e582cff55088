"""The erasure's real stores: PostgreSQL (inside the handler's transaction) and Redis.

Tables are found in the catalogue rather than listed, so a table another service adds later is erased
too; every statement runs under its own savepoint, and a table that refuses (an append-only trigger)
ends up in the certificate's ``residual`` instead of failing the whole erasure.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime

import asyncpg
import redis.asyncio as aioredis
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from fedstream.messaging.kafka import make_admin
from fedstream.security.keys import open_key_manager
from fedstream.settings import Endpoints
from schemas.base import utcnow
from schemas.compliance import ErasureCertified, LineageEntry
from schemas.topics import Topic
from services.compliance.erasure import (
    APPEND_ONLY_TABLES,
    DELETED_TABLES,
    ERASED_ORGANISATION,
    ErasureServices,
    PendingShredding,
    TopicRetention,
    declared_retention,
    id_pattern,
    rewrite_json,
)

log = logging.getLogger(__name__)

TEXT_TYPES, ARRAY_TYPES, JSON_TYPES = ("text", "varchar", "bpchar"), ("_text", "_varchar"), ("json", "jsonb")

# Every ordinary table (leaf partitions included) of every user schema, with its columns and their types, and
# whether this login may read it (the services' login does not reach the admin API's schema, for one).
CATALOGUE = """
SELECT n.nspname AS schema, c.relname AS table, a.attname AS column, t.typname AS type,
       has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT') AS readable
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg\\_%'
ORDER BY 1, 2, a.attnum
"""

LINEAGE = """
SELECT DISTINCT c.federation_id, c.round, r.released_version
FROM aggregation_contributions c
JOIN aggregation_rounds a USING (federation_id, round)
LEFT JOIN rounds r USING (federation_id, round)
WHERE c.participant_id = $1 AND a.status = 'aggregated'
ORDER BY 1, 2
"""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: dict[str, str]  # column → type name

    @property
    def sql(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def label(self) -> str:
        return self.name if self.schema == "public" else f"{self.schema}.{self.name}"


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresErasureStore:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def _tables(self, readable: bool = True) -> list[Table]:
        tables: dict[tuple[str, str], Table] = {}
        for r in await self.conn.fetch(CATALOGUE):
            if r["readable"] is readable:
                key = (r["schema"], r["table"])
                tables.setdefault(key, Table(r["schema"], r["table"], {})).columns[r["column"]] = r["type"]
        return list(tables.values())

    async def unreadable(self) -> tuple[str, ...]:
        return tuple(sorted(t.label for t in await self._tables(readable=False)))

    async def federations(self, participant_id: str) -> tuple[str, ...]:
        rows = await self.conn.fetch(
            "SELECT federation_id FROM participants WHERE participant_id = $1 "
            "UNION SELECT federation_id FROM aggregation_contributions WHERE participant_id = $1 ORDER BY 1",
            participant_id,
        )
        return tuple(r["federation_id"] for r in rows)

    async def lineage(self, participant_id: str) -> tuple[LineageEntry, ...]:
        rows = await self.conn.fetch(LINEAGE, participant_id)
        return tuple(LineageEntry(federation_id=r[0], round=r[1], model_version=r[2]) for r in rows)

    async def erase(self, participant_id: str, pseudonym: str) -> dict[str, int]:
        tables = [t for t in await self._tables() if t.name not in APPEND_ONLY_TABLES]
        touched: dict[str, int] = {}
        by_name = {t.name: t for t in tables if t.schema == "public"}
        for name in DELETED_TABLES:  # in order: keys reference enrolments
            if name in by_name and "participant_id" in by_name[name].columns:
                touched[name] = await self._count(f"DELETE FROM {by_name[name].sql} WHERE participant_id = $1", participant_id)
        for t in tables:
            if t.name in DELETED_TABLES and t.schema == "public":
                continue
            if {"participant_id", "organisation"} <= t.columns.keys():
                n = await self._count(
                    f"UPDATE {t.sql} SET organisation = $2 WHERE participant_id = $1", participant_id, ERASED_ORGANISATION
                )
                touched[t.label] = touched.get(t.label, 0) + n
            for column, kind in t.columns.items():
                n = await self._pseudonymise(t, column, kind, participant_id, pseudonym)
                touched[t.label] = touched.get(t.label, 0) + n
        return touched

    async def _pseudonymise(self, t: Table, column: str, kind: str, participant_id: str, pseudonym: str) -> int:
        c, pattern = quote(column), id_pattern(participant_id)
        if kind in TEXT_TYPES:
            return await self._count(
                f"UPDATE {t.sql} SET {c} = regexp_replace({c}, $1, $2, 'g') WHERE {c} ~ $1", pattern, pseudonym
            )
        if kind in ARRAY_TYPES:
            return await self._count(
                f"UPDATE {t.sql} SET {c} = ARRAY(SELECT regexp_replace(x, $1, $2, 'g') "
                f"FROM unnest({c}) WITH ORDINALITY AS u(x, i) ORDER BY i) "
                f"WHERE array_to_string({c}, chr(31)) ~ $1",
                pattern, pseudonym,
            )
        if kind in JSON_TYPES:
            # as text both ways: pooled connections decode jsonb to Python objects, plain json they do not
            rows = await self.conn.fetch(f"SELECT ctid, {c}::text AS v FROM {t.sql} WHERE {c}::text ~ $1", pattern)
            for r in rows:
                value = json.dumps(rewrite_json(json.loads(r["v"]), participant_id, pseudonym))
                await self._count(f"UPDATE {t.sql} SET {c} = $1::text::{kind} WHERE ctid = $2", value, r["ctid"])
            return len(rows)
        return 0

    async def _count(self, sql: str, *args: object) -> int:
        """Rows the statement changed; 0 (and a warning) if the table refuses it, e.g. an append-only trigger."""
        try:
            async with self.conn.transaction():  # a savepoint: one refusal does not abort the erasure
                status = await self.conn.execute(sql, *args)
        except asyncpg.PostgresError as exc:
            log.warning("erasure could not rewrite a table (%s): %s", type(exc).__name__, sql.split(" WHERE")[0])
            return 0
        return int(status.rsplit(" ", 1)[-1])

    async def residual(self, participant_id: str) -> tuple[str, ...]:
        """Every table (append-only ones too) scanned as JSON text: the same bytes a dump would show."""
        found = []
        for t in await self._tables():
            hit = await self.conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {t.sql} AS x WHERE to_jsonb(x)::text ~ $1)", id_pattern(participant_id)
            )
            if hit:
                found.append(t.label)
        return tuple(found)

    async def record(self, certificate: ErasureCertified) -> None:
        await self.conn.execute(
            "INSERT INTO erasures (request_id, pseudonym, erased_at, certificate) VALUES ($1, $2, $3, $4::text::jsonb) "
            "ON CONFLICT DO NOTHING",
            certificate.request_id, certificate.pseudonym, certificate.erased_at, certificate.model_dump_json(),
        )

    async def schedule_shredding(self, pseudonym: str, participant_id: str) -> None:
        await self.conn.execute(
            "INSERT INTO erasure_pending_keys (pseudonym, participant_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            pseudonym, participant_id,
        )

    async def pending_shreddings(self, limit: int) -> tuple[PendingShredding, ...]:
        rows = await self.conn.fetch(
            "SELECT pseudonym, participant_id FROM erasure_pending_keys ORDER BY pseudonym LIMIT $1 "
            "FOR UPDATE SKIP LOCKED", limit,
        )
        return tuple(PendingShredding(r["pseudonym"], r["participant_id"]) for r in rows)

    async def shredded(self, pseudonym: str, at: datetime) -> None:
        await self.conn.execute("DELETE FROM erasure_pending_keys WHERE pseudonym = $1", pseudonym)
        await self.conn.execute(
            "UPDATE erasures SET keys_destroyed_at = $2 WHERE pseudonym = $1 AND keys_destroyed_at IS NULL", pseudonym, at
        )


class RedisScrubber:
    """Coordination state may be lost by design (PRODUCT.md §2), so whatever mentions the participant goes:
    a key named after it, a string value holding it, or the member/field/element that is it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str) -> "RedisScrubber":
        return cls(aioredis.from_url(url))

    async def scrub(self, participant_id: str) -> int:
        pattern = re.compile(id_pattern(participant_id))

        def hit(raw: bytes | str) -> bool:
            return bool(pattern.search(raw.decode(errors="replace") if isinstance(raw, bytes) else raw))

        removed = 0
        async for key in self.client.scan_iter(count=500):
            if hit(key):
                removed += await self.client.delete(key)
                continue
            kind = (await self.client.type(key)).decode()
            if kind == "string":
                value = await self.client.get(key)
                if value is not None and hit(value):
                    removed += await self.client.delete(key)
            elif kind == "zset":
                members = [m for m in await self.client.zrange(key, 0, -1) if hit(m)]
                removed += await self.client.zrem(key, *members) if members else 0
            elif kind == "set":
                members = [m for m in await self.client.smembers(key) if hit(m)]
                removed += await self.client.srem(key, *members) if members else 0
            elif kind == "hash":
                fields = [f for f, v in (await self.client.hgetall(key)).items() if hit(f) or hit(v)]
                removed += await self.client.hdel(key, *fields) if fields else 0
            elif kind == "list":
                for value in {v for v in await self.client.lrange(key, 0, -1) if hit(v)}:
                    removed += await self.client.lrem(key, 0, value)
        return removed


class KafkaRetentionReader:
    """The topics' retention as the broker applies it (a topic altered by hand since it was created included);
    the declared config for any topic it cannot tell (no DescribeConfigs right, broker away): the erasure does
    not wait on the broker, and the certificate says which source each figure came from."""

    CONFIGS = {"retention.ms": None, "segment.ms": None, "cleanup.policy": None}
    TIMEOUT_S = 10.0

    def __init__(self, endpoints: Endpoints) -> None:
        self.endpoints = endpoints

    async def retention(self, topics: tuple[Topic, ...]) -> tuple[TopicRetention, ...]:
        try:
            found = await asyncio.wait_for(self._describe(tuple(t.name for t in topics)), self.TIMEOUT_S)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("could not read the topics' retention from the broker (%r): certifying the declared one", exc)
            found = {}
        return tuple(found.get(t.name) or declared_retention(t) for t in topics)

    async def _describe(self, names: tuple[str, ...]) -> dict[str, TopicRetention]:
        admin = make_admin(self.endpoints, "fedstream-compliance-retention")
        await admin.start()
        try:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n, configs=dict(self.CONFIGS)) for n in names]
            )
        finally:
            await admin.close()
        return {r.topic: r for resp in responses for r in map(_parse_resource, resp.resources) if r is not None}


def _parse_resource(resource: tuple) -> TopicRetention | None:
    """One DescribeConfigs resource: (error code, message, type, name, [(name, value, …), …])."""
    error_code, _, _, name, entries = resource[:5]
    if error_code != 0:
        return None
    values = {e[0]: e[1] for e in entries}
    try:
        retention_ms, segment_ms = int(values["retention.ms"]), int(values["segment.ms"])
    except (KeyError, TypeError, ValueError):
        return None
    policy = values.get("cleanup.policy") or "delete"
    return TopicRetention(name, retention_ms, segment_ms, compacted="delete" not in policy, source="broker")


def erasure_services(endpoints: Endpoints) -> ErasureServices | None:
    """The real stores of an erasure; None where no key manager is configured (then nothing is sealed)."""
    if endpoints.key_manager_url is None:
        return None
    return ErasureServices(
        keys=open_key_manager(endpoints.key_manager_url),
        store=lambda repo: PostgresErasureStore(repo.conn),
        coordination=RedisScrubber.from_url(endpoints.redis_url),
        clock=utcnow,
        kafka=KafkaRetentionReader(endpoints),
    )
