"""Reads of participant data through the admin/compliance API (issue 5 §6: every read is audited).

The API publishes one ``ParticipantDataAccessed`` per read, and returns the data only once Kafka has
acknowledged it; compliance, the audit trail's single writer, chains it like every other event.
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from schemas.base import Event, Identifier


class ApiRole(StrEnum):
    ADMIN = "admin"
    AUDITOR = "auditor"
    DPO = "dpo"
    SITE_OPERATOR = "site_operator"


class AccessedResource(StrEnum):
    PARTICIPANTS = "participants"
    PRIVACY_LEDGER = "privacy_ledger"


class ParticipantDataAccessed(Event):
    """Who read which participants' data, in which role and for which tenant (None: all tenants)."""

    TYPE: ClassVar[str] = "io.fedstream.participant_data.accessed.v1"
    accessor: Identifier
    role: ApiRole
    tenant: Identifier | None = None
    resource: AccessedResource
    participant_ids: tuple[Identifier, ...] = Field(max_length=10_000)


FACTS = (ParticipantDataAccessed,)
