"""The compliance service's timer that signs a Merkle checkpoint of the audit trail now and then.

Each tick reads the rows appended since the last one (checking that they chain onto what it already
holds: it never signs a broken chain), and, if anything other than its own checkpoint events was
recorded since the newest checkpoint, signs the tree head over every row, stores it and publishes it
as ``AuditCheckpointSigned`` — in one transaction, through the outbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fedstream.messaging.transaction import Transaction
from fedstream.security.keyfiles import KeyFileError, load_or_create
from services.compliance.checkpoints import Checkpoint, key_id_of, make_checkpoint, public_key_text, to_event
from services.compliance.domain import AuditRow, GENESIS, row_hash
from services.compliance.merkle import leaf_hash, prefix_roots
from services.compliance.ports import AuditRepository
from schemas.base import utcnow
from schemas.compliance import AuditCheckpointSigned
from schemas.topics import COMPLIANCE

log = logging.getLogger(__name__)


class AuditChainBroken(RuntimeError):
    """Rows read from the trail do not chain onto the rows read before: nothing is signed."""


# The checkpoint key file is not an Ed25519 private key, or others can read it.
SigningKeyError = KeyFileError


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """The compliance service's checkpoint key: PEM (PKCS#8) at ``path``, created on first start (0600).

    A small local stand-in for a key-management port: pointing this at a KMS/HSM changes nothing else.
    Creation is O_EXCL, so two instances starting together end up sharing one key.
    """
    key, created = load_or_create(path)
    if created:
        log.info("created the audit checkpoint key %s (key id %s)", path, key_id_of(public_key_text(key)))
    return key


def default_key_path(state_dir: Path) -> Path:
    return state_dir / "keys" / "compliance" / "audit-checkpoint.pem"


class Checkpointer:
    def __init__(self, key: Ed25519PrivateKey, clock: Callable[[], datetime] = utcnow, source: str = COMPLIANCE) -> None:
        self.key, self.clock, self.source = key, clock, source
        self.leaves: list[bytes] = []  # leaf hashes of rows 1..n as this instance read (and checked) them
        self._head: AuditRow | None = None

    async def tick(self, transactions) -> None:  # noqa: ANN001 - a Transactions[AuditRepository]
        async with transactions.begin() as tx:
            await self.checkpoint(tx)

    async def checkpoint(self, tx: Transaction[AuditRepository]) -> Checkpoint | None:
        """Sign and publish a checkpoint of the whole trail, if there is something new to sign."""
        latest = await tx.repo.lock_latest_checkpoint()
        self._extend(await tx.repo.rows_after(max(len(self.leaves) - 1, 0)))
        size, previous_size = len(self.leaves), (latest.tree_size if latest else 0)
        if size < previous_size:
            raise AuditChainBroken(f"the trail has {size} rows but the newest checkpoint covers {previous_size}")
        if size == previous_size or not await tx.repo.has_rows_after(previous_size, AuditCheckpointSigned.TYPE):
            return None  # nothing but our own checkpoint events since the last one: no endless self-signing
        if latest is not None and prefix_roots(self.leaves, [previous_size])[previous_size].hex() != latest.root_hash:
            raise AuditChainBroken(f"rows 1..{previous_size} no longer match the checkpoint signed {latest.signed_at}")
        cp = make_checkpoint(self.key, self.leaves, size, previous_size, self.clock())
        if await tx.repo.add_checkpoint(cp):
            tx.emit(to_event(cp, self.source))
            log.info("signed audit checkpoint: %d rows, root %s", size, cp.root_hash[:16])
            return cp
        return None

    def _extend(self, rows: list[AuditRow]) -> None:
        """Take rows that follow the ones held, checking each link before trusting it.

        ``rows`` starts with the last row already held (if any): if it vanished or changed since (a
        restore, a rewrite), nothing is signed over a trail that is no longer the one read before.
        """
        if self._head is not None:
            if not rows or rows[0].seq != self._head.seq or rows[0].row_hash != self._head.row_hash:
                raise AuditChainBroken(f"row {self._head.seq} vanished or changed since it was read: refusing to sign")
            rows = rows[1:]
        for row in rows:
            expected_prev = GENESIS if self._head is None else self._head.row_hash
            if row.seq != len(self.leaves) + 1 or row.prev_hash != expected_prev:
                raise AuditChainBroken(f"row {row.seq} does not follow row {len(self.leaves)}: refusing to sign")
            if row_hash(row.seq, row.entry, row.prev_hash) != row.row_hash:
                raise AuditChainBroken(f"row {row.seq} does not match its hash: refusing to sign")
            self.leaves.append(leaf_hash(bytes.fromhex(row.row_hash)))
            self._head = row
