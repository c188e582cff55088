"""The FastAPI application. ``create_app`` takes the ports, so tests run it over in-memory fakes and
production over PostgreSQL and Kafka (``fedstream.api.bootstrap``)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from fedstream.api.dependencies import ApiPorts
from fedstream.api.routes import ROUTERS

__all__ = ["ApiPorts", "create_app"]


def create_app(p: ApiPorts | None, lifespan: Callable[[FastAPI], AbstractAsyncContextManager] | None = None) -> FastAPI:
    app = FastAPI(
        title="fedstream admin and compliance API",
        version="1.0.0",
        description="Registry, participants, privacy ledger and audit trail by role (admin, auditor, dpo, site_operator). "
                    "Site operators see their own organisation's rows only (PostgreSQL row-level security); every read of "
                    "participant data is recorded in the audit trail; privileged actions need a TOTP code (X-TOTP).",
        lifespan=lifespan,
    )
    if p is not None:
        app.state.ports = p
    for router in ROUTERS:
        app.include_router(router)
    return app
