"""`fedstream audit verify` against the database: the chain link by link, then every signed checkpoint.

The chain finds rows modified, deleted, inserted or reordered in place; the checkpoints find what the
chain alone cannot: a tail cut off (the newest checkpoint is larger than the trail), and a trail
rewritten wholesale with every hash recomputed (roots that no longer recompute). Checkpoints read from
the published topic as well catch an attacker who also deleted checkpoint rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import asyncpg

from services.compliance.adapters import read_snapshot
from services.compliance.checkpoints import Checkpoint, CheckpointProblem, check_checkpoints
from services.compliance.domain import AuditRow, BrokenLink, verify


@dataclass(frozen=True)
class VerifyResult:
    rows: int
    head: str | None
    broken: BrokenLink | None
    checkpoints: int = 0
    checkpoint_problems: tuple[CheckpointProblem, ...] = field(default=())

    @property
    def intact(self) -> bool:
        return self.broken is None and not self.checkpoint_problems


def verify_trail(
    rows: Sequence[AuditRow],
    checkpoints: Sequence[Checkpoint],
    trusted_key_ids: Collection[str] | None = None,
    published: Sequence[Checkpoint] | None = None,
) -> VerifyResult:
    """The chain and every checkpoint (stored, and published if given) against the rows."""
    problems = check_checkpoints(checkpoints, trusted_key_ids, [r.row_hash for r in rows])
    if published is not None:
        problems += compare_published(checkpoints, published)
        problems += check_checkpoints(published, trusted_key_ids, [r.row_hash for r in rows])
    unique = tuple(dict.fromkeys(problems))  # the same finding from both copies is said once
    return VerifyResult(len(rows), rows[-1].row_hash if rows else None, verify(rows), len(checkpoints), unique)


def compare_published(stored: Sequence[Checkpoint], published: Sequence[Checkpoint]) -> list[CheckpointProblem]:
    """Published checkpoints missing from (or different in) the database: its copy was tampered with."""
    by_size = {c.tree_size: c for c in stored}
    problems = []
    for cp in published:
        mine = by_size.get(cp.tree_size)
        if mine is None:
            problems.append(CheckpointProblem(
                cp.tree_size, "missing", f"the published checkpoint of {cp.tree_size} rows is missing from the database"
            ))
        elif (mine.root_hash, mine.signature) != (cp.root_hash, cp.signature):
            problems.append(CheckpointProblem(
                cp.tree_size, "rewritten", f"the stored checkpoint of {cp.tree_size} rows differs from the published one"
            ))
    return problems


async def verify_database(
    database_url: str,
    trusted_key_ids: Collection[str] | None = None,
    published: Sequence[Checkpoint] | None = None,
) -> VerifyResult:
    conn = await asyncpg.connect(database_url)
    try:
        rows, checkpoints = await read_snapshot(conn)
    finally:
        await conn.close()
    return verify_trail(rows, checkpoints, trusted_key_ids, published)
