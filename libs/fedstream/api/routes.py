"""The routes, by audience: registry reads (every role), participant data (each read audited before it is
answered), the audit trail, and privileged actions that publish commands (TOTP)."""

# No `from __future__ import annotations`: FastAPI reads the route annotations at runtime.
from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status

from fedstream.api.auth import Principal
from fedstream.api.dependencies import ApiPorts, allow, ports, privileged
from fedstream.api.models import (
    AuditRowOut, BaaRequest, CommandAccepted, ConsentRequest, EnrolRequest, EraseRequest, FederationOut, LedgerOut, ParticipantOut,
    ReleaseOut, RevokeRequest, RoundOut, VerifyOut,
)
from fedstream.api.ports import PublishFailed
from schemas.access import AccessedResource, ApiRole, ParticipantDataAccessed
from schemas.base import Event
from schemas.compliance import ERASURE_SCOPE, EraseParticipant
from schemas.identity import EnrolParticipant, RecordConsent, RegisterBaa, RevokeParticipantKey
from schemas.topics import ADMIN_API

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"  # schemas.base.Identifier
IdPath = Annotated[str, Path(pattern=ID_PATTERN)]
ADMIN, AUDITOR, DPO, SITE = ApiRole.ADMIN, ApiRole.AUDITOR, ApiRole.DPO, ApiRole.SITE_OPERATOR
EVERYONE = (ADMIN, AUDITOR, DPO, SITE)


# --- the audit of reads ------------------------------------------------------------------------


async def audited(p: ApiPorts, who: Principal, federation_id: str, resource: AccessedResource, ids: Iterable[str]) -> None:
    """Publish the access before answering: a read that cannot be audited is not answered."""
    event = ParticipantDataAccessed(
        source=ADMIN_API, federation_id=federation_id, accessor=who.user_id, role=who.role, tenant=who.tenant,
        resource=resource, participant_ids=tuple(sorted(set(ids))),
    )
    try:
        await p.publisher.publish(event)
    except PublishFailed:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the read could not be audited, so it is not answered") from None


async def command(p: ApiPorts, event: Event) -> CommandAccepted:
    try:
        topic = await p.publisher.publish(event)
    except PublishFailed:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the command could not be published") from None
    return CommandAccepted(event_id=event.event_id, type=event.TYPE, topic=topic)


async def enrolled_organisation(p: ApiPorts, who: Principal, participant_id: str) -> str:
    organisation = await p.store.organisation_of(who, participant_id)
    if organisation is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{participant_id} is not enrolled")
    return organisation


# --- routes ------------------------------------------------------------------------------------

Ports = Annotated[ApiPorts, Depends(ports)]
DENIED = {401: {"description": "no, unknown or disabled token (or, where required, no valid TOTP code)"},
          403: {"description": "the caller's role may not do this"}}
UNAUDITED = {503: {"description": "the broker did not acknowledge the audit record or command"}}
registry = APIRouter(tags=["registry"], responses=DENIED)
participant_data = APIRouter(tags=["participant data (every read is audited)"], responses=DENIED | UNAUDITED)
audit = APIRouter(prefix="/audit", tags=["audit"], responses=DENIED)
actions = APIRouter(tags=["privileged actions (TOTP)"],
                    responses=DENIED | UNAUDITED | {404: {"description": "the participant is not enrolled"}})


@registry.get("/federations", response_model=list[FederationOut])
async def list_federations(p: Ports, who: Annotated[Principal, Depends(allow(*EVERYONE))]) -> list[FederationOut]:
    return await p.store.federations(who)


@registry.get("/federations/{federation_id}/rounds", response_model=list[RoundOut])
async def list_rounds(federation_id: IdPath, p: Ports, who: Annotated[Principal, Depends(allow(*EVERYONE))]) -> list[RoundOut]:
    return await p.store.rounds(who, federation_id)


@registry.get("/federations/{federation_id}/releases", response_model=list[ReleaseOut])
async def list_releases(federation_id: IdPath, p: Ports, who: Annotated[Principal, Depends(allow(*EVERYONE))]) -> list[ReleaseOut]:
    return await p.store.releases(who, federation_id)


@participant_data.get("/federations/{federation_id}/participants", response_model=list[ParticipantOut])
async def list_participants(
    federation_id: IdPath, p: Ports, who: Annotated[Principal, Depends(allow(ADMIN, DPO, SITE))]
) -> list[ParticipantOut]:
    rows = await p.store.participants(who, federation_id)
    await audited(p, who, federation_id, AccessedResource.PARTICIPANTS, (r.participant_id for r in rows))
    return rows


@participant_data.get("/federations/{federation_id}/privacy-ledger", response_model=list[LedgerOut])
async def privacy_ledger(
    federation_id: IdPath, p: Ports, who: Annotated[Principal, Depends(allow(AUDITOR, DPO, SITE))]
) -> list[LedgerOut]:
    rows = await p.store.ledger(who, federation_id)
    await audited(p, who, federation_id, AccessedResource.PRIVACY_LEDGER, (r.participant_id for r in rows))
    return rows


@audit.get("/trail", response_model=list[AuditRowOut])
async def audit_trail(
    p: Ports,
    who: Annotated[Principal, Depends(allow(AUDITOR, DPO))],
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditRowOut]:
    return await p.store.audit_trail(who, after_seq, limit)


@audit.get("/verify", response_model=VerifyOut)
async def audit_verify(p: Ports, who: Annotated[Principal, Depends(allow(AUDITOR, DPO))]) -> VerifyOut:
    return await p.store.verify_audit_trail(who)


@actions.post("/participants", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def enrol_participant(body: EnrolRequest, p: Ports, who: Annotated[Principal, Depends(privileged(ADMIN))]) -> CommandAccepted:
    return await command(p, EnrolParticipant(
        source=ADMIN_API, federation_id=body.organisation, participant_id=body.participant_id,
        organisation=body.organisation, public_key=body.public_key, baa_reference=body.baa_reference, requested_by=who.user_id,
    ))


@actions.post("/participants/{participant_id}/key-revocations", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def revoke_key(
    participant_id: IdPath, body: RevokeRequest, p: Ports, who: Annotated[Principal, Depends(privileged(ADMIN))]
) -> CommandAccepted:
    organisation = await enrolled_organisation(p, who, participant_id)
    return await command(p, RevokeParticipantKey(
        source=ADMIN_API, federation_id=organisation, participant_id=participant_id, key_id=body.key_id,
        reason=body.reason, requested_by=who.user_id,
    ))


@actions.post("/participants/{participant_id}/consents", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def record_consent(
    participant_id: IdPath, body: ConsentRequest, p: Ports, who: Annotated[Principal, Depends(privileged(DPO))]
) -> CommandAccepted:
    organisation = await enrolled_organisation(p, who, participant_id)
    return await command(p, RecordConsent(
        source=ADMIN_API, federation_id=organisation, participant_id=participant_id, purpose=body.purpose, scope=body.scope,
        expires_at=body.expires_at, granted=body.granted, requested_by=who.user_id,
    ))


@actions.post("/organisations/{organisation}/baas", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def register_baa(
    organisation: IdPath, body: BaaRequest, p: Ports, who: Annotated[Principal, Depends(privileged(DPO))]
) -> CommandAccepted:
    return await command(p, RegisterBaa(
        source=ADMIN_API, federation_id=organisation, organisation=organisation, reference=body.reference,
        expires_at=body.expires_at, active=body.active, requested_by=who.user_id,
    ))


@actions.post("/participants/{participant_id}/erasure", status_code=status.HTTP_202_ACCEPTED, response_model=CommandAccepted)
async def erase_participant(
    participant_id: IdPath, body: EraseRequest, p: Ports, who: Annotated[Principal, Depends(privileged(DPO))]
) -> CommandAccepted:
    # Not only enrolled participants: a federation spec may name participants that never enrolled.
    return await command(p, EraseParticipant(
        source=ADMIN_API, federation_id=ERASURE_SCOPE, participant_id=participant_id, reason=body.reason,
        requested_by=who.user_id,
    ))


ROUTERS = (registry, participant_data, audit, actions)
