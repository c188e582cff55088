"""Validation: combines participants' federated evaluations of a candidate, applies the quality gates
and tracks convergence (early stop when improvement stays below a threshold for k rounds)."""
