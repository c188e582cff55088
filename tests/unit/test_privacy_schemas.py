"""The DP parts of the contract: parameters travel with updates, specs may ask for DP."""

from __future__ import annotations

from uuid import uuid4

import pytest
from pydantic import ValidationError

from fedstream.cli.privacy_cmd import ledger_table
from schemas import events as ev
from schemas.federation import CryptoApproach, DpSpec, FederationSpec, ModelSpec, ParticipantSpec, UseCase

PARAMS = ev.DpParameters(noise_multiplier=1.1, sample_rate=0.05, steps=20, clipping_norm=1.0, delta=1e-5, dataset_id="site-a")
BLOB = ev.BlobRef(uri="memory://u", sha256="a" * 64, size=1)


def submitted(**kw):
    return ev.UpdateSubmitted(source="p", federation_id="f", update_id=uuid4(), participant_id="a", round=1,
                              base_model_version=0, update=BLOB, num_examples=3, train_loss=0.1, **kw)


def test_dp_protection_and_its_parameters_go_together():
    assert submitted(protection="dp", privacy=PARAMS).privacy == PARAMS
    with pytest.raises(ValidationError, match="go together"):
        submitted(protection="dp")
    with pytest.raises(ValidationError, match="go together"):
        submitted(privacy=PARAMS)


def test_dp_parameters_are_mechanism_parameters_never_an_epsilon():
    assert "epsilon" not in ev.DpParameters.model_fields
    with pytest.raises(ValidationError):
        ev.DpParameters(noise_multiplier=1.0, sample_rate=1.5, steps=1, clipping_norm=1.0, delta=1e-5, dataset_id="d")


def spec(crypto: CryptoApproach, dp: DpSpec = DpSpec()) -> FederationSpec:
    return FederationSpec(federation_id="f", project_name="p", use_case=UseCase.OTHER,
                          participants=(ParticipantSpec(participant_id="a", organisation="o"),),
                          model=ModelSpec(architecture="logistic", input_dim=2), crypto=crypto, dp=dp, training={"quorum": 1})


def test_a_spec_may_ask_for_dp_but_not_yet_for_other_protections():
    assert spec(CryptoApproach.DP).local_dp and not spec(CryptoApproach.NONE).local_dp
    assert not spec(CryptoApproach.DP, DpSpec(local=False, central=True)).local_dp
    with pytest.raises(ValidationError, match="not available yet"):
        spec(CryptoApproach.SECAGG)
    with pytest.raises(ValidationError, match="dp.local, dp.central"):
        spec(CryptoApproach.DP, DpSpec(local=False, central=False))


def test_the_ledger_table_marks_exhausted_budgets():
    row = {"federation_id": "f", "participant_id": "a", "dataset_id": "d", "charges": 3, "last_round": 3,
           "epsilon_spent": 0.49, "budget_epsilon": 0.5, "epsilon_remaining": 0.01, "budget_delta": 1e-5,
           "accountant": "pld", "exhausted": True}
    table = ledger_table([row])
    assert table.row_count == 1 and "exhausted" in table.columns[-1]._cells[0]
