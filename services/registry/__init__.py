"""Registry: federations, rounds, model versions and their lineage; opens each next round.

Two halves: *decisions* (open the next round, release a model) write the registry's own state and
emit events; *projections* materialise the read views (federations, rounds, model versions, updates)
from the event stream alone, so replaying the topics into an empty database rebuilds them.
"""
