"""An HE federation on the real stack: participants encrypt, the aggregator sums ciphertexts, the key
custodian (its own process) decrypts each round's quorum aggregate; validation and registry run unchanged.
The released model equals the plaintext FedAvg of the very updates that were sent, within CKKS's bound."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import numpy as np
import pytest

from fedstream.crypto import he
from fedstream.crypto.he_packing import flatten
from fedstream.participant.simulation import simulate
from fedstream.storage import tensors
from fedstream.storage.envelope import blob_store_for
from services.aggregation.fedavg import weighted_average
from services.key_custody.bootstrap import KeyCustodySettings
from schemas import events as ev
from schemas.custody import AggregateDecrypted, DecryptionRefused, EncryptedAggregateReady, HeContextPublished
from schemas.federation import parse_spec
from tests.integration.harness import TopicLog

pytestmark = pytest.mark.integration


def he_spec(federation_id: str, local_dp: bool, sites: tuple[str, ...] = ("a", "b", "c")):
    people = ", ".join(f"{{participant_id: {p}, organisation: org-{p}}}" for p in sites)
    return parse_spec(f"""
federation_id: {federation_id}
project_name: HE pilot
use_case: clinical_prediction
participants: [{people}]
model: {{architecture: logistic, input_dim: 30}}
data: {{dataset: breast_cancer, seed: 3}}
training: {{rounds: 2, local_epochs: 1, learning_rate: 0.1, batch_size: 16, quorum: 3, round_deadline_s: 120, evaluation_deadline_s: 30}}
validation: {{metric: auc, min_metric: 0.0, max_regression: 1.0, convergence_threshold: 0.0, patience: 10}}
privacy: {{data_sensitivity: patient_level, epsilon: 0.5, delta: 1.0e-5}}
crypto: he
he: {{scheme: ckks, local_dp: {str(local_dp).lower()}}}
""")


@pytest.mark.parametrize("local_dp", [False, True], ids=["he", "dp+he"])
async def test_an_encrypted_federation_releases_the_plaintext_fedavg_of_its_updates(stack, local_dp):
    # Fresh participant ids: ε composes per participant × dataset across federations, and other suites
    # spend the same dataset's budget under their own ids.
    run = uuid4().hex[:8]
    spec = he_spec(f"he-{run}", local_dp, sites=tuple(f"{site}-{run}" for site in "abc"))
    async with TopicLog(stack.endpoints, spec.federation_id) as log:
        result = await simulate(stack.endpoints, spec, timeout_s=300)
        await log.read_to_end()
        submitted = {e.update_id: e for e in log.events(ev.UpdateSubmitted)}
        requests = log.events(EncryptedAggregateReady)
        decrypted = log.events(AggregateDecrypted)
        aggregated = {e.round: e for e in log.events(ev.RoundAggregated)}
        [context] = log.events(HeContextPublished)
        charged = log.events(ev.PrivacyCharged)
    assert result.progress.completed is not None and len(result.progress.released) == 2
    assert not log.events(DecryptionRefused) and len(decrypted) == len(requests) == 2
    assert {e.protection for e in submitted.values()} == {"dp_he" if local_dp else "he"}
    # DP composes: DP-SGD noise first, then encryption; the ledger charges ε for every counted update.
    assert all((c.epsilon is not None) == local_dp for c in charged) and charged
    assert all(e.update.media_type == he.MEDIA_TYPE for e in submitted.values())

    # The test plays auditor with the custodian's keys: decrypt each update that went in, average in plaintext.
    keys = KeyCustodySettings(state_dir=stack.settings.state_dir).key_store().load(spec.federation_id)
    assert keys is not None and keys.fingerprint == context.fingerprint
    secret = he.load_secret_context(keys.secret_context, keys.fingerprint)
    blobs = blob_store_for(stack.endpoints)
    for request in requests:
        params = tensors.specs_of(tensors.from_bytes(await blobs.get(aggregated[request.round].aggregate)))
        length = sum(p.size for p in params)
        updates = [he.decrypt(secret, await blobs.get(ref), length) for ref in request.updates]
        plain = weighted_average([{"w": u} for u in updates], [c.num_examples for c in request.contributions])["w"]
        model = tensors.from_bytes(await blobs.get(aggregated[request.round].aggregate))
        np.testing.assert_allclose(flatten(model, params), plain, rtol=0, atol=1e-5)
        assert {c.update_id for c in request.contributions} <= set(submitted)

    # Aggregation's state holds the public context only: what it recorded is the published context's reference.
    conn = await asyncpg.connect(stack.endpoints.database_url)
    try:
        row = await conn.fetchrow("SELECT * FROM aggregation_he_federations WHERE federation_id = $1", spec.federation_id)
    finally:
        await conn.close()
    assert row["fingerprint"] == context.fingerprint
    public = he.load_public_context(await blobs.get(context.public_context))
    assert not public.has_secret_key
