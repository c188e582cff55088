"""Validation: combines participants' federated evaluations of a candidate, applies the quality gates
and tracks convergence (early stop when improvement stays below a threshold for k rounds). It also runs
the alert stream processor (``health`` rules, ``monitor`` handlers): windowed participant and round
health over the event topics, raised as ``AlertRaised`` on ``fedstream.alerts``. Participants' heartbeats and
evaluation reports count only once verified (``senders``: signature, key, freshness, nonce) against its own
projection of the participants' keys."""
