from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

from services.compliance.domain import GENESIS, AuditEntry, chain, verify


def entries(n):
    return [
        AuditEntry(uuid4(), "io.fedstream.round.opened.v1", "fedstream.rounds", "f", i, "registry",
                   datetime(2026, 1, 1, tzinfo=UTC), f"{i:064x}")
        for i in range(n)
    ]


def build(n):
    rows, prev = [], None
    for e in entries(n):
        prev = chain(prev, e)
        rows.append(prev)
    return rows


def test_an_untouched_chain_verifies():
    rows = build(5)
    assert rows[0].prev_hash == GENESIS
    assert verify(rows) is None
    assert verify(rows, expected_head=(5, rows[-1].row_hash)) is None


def test_a_modified_row_is_found():
    rows = build(5)
    rows[2] = replace(rows[2], entry=replace(rows[2].entry, source="attacker"))
    assert verify(rows).seq == 3


def test_a_deleted_row_is_found():
    rows = build(5)
    del rows[1]
    assert verify(rows).seq == 3


def test_an_inserted_row_is_found():
    rows = build(5)
    forged = chain(rows[1], entries(1)[0])
    rows = rows[:2] + [forged] + [replace(r, seq=r.seq + 1) for r in rows[2:]]
    assert verify(rows).seq == 4


def test_reordered_rows_are_found():
    rows = build(5)
    rows[1], rows[2] = replace(rows[2], seq=2), replace(rows[1], seq=3)
    assert verify(rows).seq == 2


def test_a_truncated_tail_is_found_against_a_checkpoint():
    rows = build(5)
    assert verify(rows[:3], expected_head=(5, rows[-1].row_hash)).seq == 4


# --- naming what was done, for the ways a superuser can tamper in SQL ------------------------------------


def test_a_modified_row_is_named():
    rows = build(6)
    rows[3] = replace(rows[3], entry=replace(rows[3].entry, payload_sha256="f" * 64))
    broken = verify(rows)
    assert (broken.kind, broken.seq) == ("modified", 4) and "row 4 modified" in broken.problem


def test_a_deleted_row_is_named_with_or_without_renumbering():
    rows = build(6)
    gap = verify(rows[:2] + rows[3:])
    assert (gap.kind, gap.seq) == ("deleted", 4) and "row(s) 3 deleted" in gap.problem
    renumbered = verify(rows[:2] + [replace(r, seq=r.seq - 1) for r in rows[3:]])
    assert (renumbered.kind, renumbered.seq) == ("deleted", 3) and "1 row(s) deleted before row 3" in renumbered.problem


def test_an_inserted_row_that_is_correctly_chained_is_named():
    rows = build(6)
    forged = chain(rows[2], entries(1)[0])  # a new row 4 with a valid hash, the old 4.. moved up one
    broken = verify(rows[:3] + [forged] + [replace(r, seq=r.seq + 1) for r in rows[3:]])
    assert (broken.kind, broken.seq) == ("inserted", 5) and "row(s) 4 inserted" in broken.problem


def test_an_inserted_row_with_made_up_hashes_is_named():
    rows = build(6)
    junk = replace(chain(rows[2], entries(1)[0]), prev_hash="e" * 64, row_hash="d" * 64)
    broken = verify(rows[:3] + [junk] + [replace(r, seq=r.seq + 1) for r in rows[3:]])
    assert (broken.kind, broken.seq) == ("inserted", 4)


def test_swapped_rows_are_named_reordered():
    rows = build(6)
    swapped = rows[:2] + [replace(rows[3], seq=3), replace(rows[2], seq=4)] + rows[4:]
    broken = verify(swapped)
    assert (broken.kind, broken.seq) == ("reordered", 3) and "chains to row 4" in broken.problem


def test_a_truncated_tail_is_named():
    rows = build(6)
    broken = verify(rows[:4], expected_head=(6, rows[-1].row_hash))
    assert broken.kind == "truncated" and "truncated after row 4" in broken.problem
