"""Fixtures shared by the integration tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from uuid import uuid4

import pytest

from fedstream.participant.simulation import simulate
from schemas.federation import parse_spec

SPEC_FILE = Path(__file__).resolve().parents[2] / "examples" / "federations" / "breast-cancer-3.yaml"


@pytest.fixture(scope="session")
def federation(stack):
    spec = parse_spec(SPEC_FILE.read_text())
    spec = spec.model_copy(update={"federation_id": f"bc-{uuid4().hex[:8]}"})
    result = asyncio.run(simulate(stack.endpoints, spec, timeout_s=240))
    return spec, result


