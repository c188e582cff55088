"""Aggregation: the round state machine (collect → close on quorum + deadline → aggregate) and FedAvg."""
