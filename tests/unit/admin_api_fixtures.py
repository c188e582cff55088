"""The admin API over in-memory ports: one user per role, two tenants with participants and ledger rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp

from fedstream.api.app import ApiPorts, create_app
from fedstream.api.auth import User, token_hash
from fedstream.api.fakes import InMemoryReadStore, InMemoryUserDirectory, RecordingPublisher
from fedstream.api.models import FederationOut, LedgerOut, ParticipantOut
from schemas.access import ApiRole

FEDERATION = "bc-1"
NOW = 1_900_000_000.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
MEMBERS = {"org-a": ["pa1", "pa2"], "org-b": ["pb1"]}


@dataclass
class Caller:
    user: User
    token: str

    def headers(self, totp: str | None = None) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}"}
        if totp is not None:
            h["X-TOTP"] = totp
        return h

    def code(self, at: float = NOW) -> str:
        return pyotp.TOTP(self.user.totp_secret).at(at)


def callers() -> dict[str, Caller]:
    made = {}
    for name, role, tenant in [("admin", ApiRole.ADMIN, None), ("auditor", ApiRole.AUDITOR, None), ("dpo", ApiRole.DPO, None),
                               ("site-a", ApiRole.SITE_OPERATOR, "org-a"), ("site-b", ApiRole.SITE_OPERATOR, "org-b")]:
        made[name] = Caller(User(f"user-{name}", role, tenant, pyotp.random_base32()), f"token-{name}-{'x' * 20}")
    return made


def seeded_store() -> InMemoryReadStore:
    store = InMemoryReadStore()
    store.federation_rows = [FederationOut(federation_id=FEDERATION, project_name="p", use_case="u", crypto="none",
                                           created_at=T0, completed_at=None, completion_reason=None, rounds_run=None)]
    for organisation, participants in MEMBERS.items():
        for p in participants:
            store.enrolments[p] = organisation
            store.participant_rows.setdefault(FEDERATION, []).append(
                ParticipantOut(participant_id=p, organisation=organisation, kind="hospital", enrolled_at=T0))
            store.ledger_rows.setdefault(FEDERATION, []).append(LedgerOut(
                participant_id=p, dataset_id="d", charges=1, last_round=1, epsilon_spent=0.1, epsilon_remaining=0.4,
                budget_epsilon=0.5, budget_delta=1e-5, exhausted=False))
    return store


def build(clock=lambda: NOW):  # noqa: ANN001, ANN201 - test helper
    users = callers()
    directory = InMemoryUserDirectory({token_hash(c.token): c.user for c in users.values()})
    publisher = RecordingPublisher()
    ports = ApiPorts(directory, seeded_store(), publisher, clock=clock)
    return create_app(ports), ports, users, publisher
