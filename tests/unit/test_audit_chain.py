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
