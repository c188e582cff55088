"""A Merkle tree over the audit trail, as in Certificate Transparency (RFC 6962 §2.1, RFC 9162 §2.1).

Leaves are ``H(0x00 || entry)`` and inner nodes ``H(0x01 || left || right)`` with SHA-256; the tree of
n leaves splits at the largest power of two below n. The domain separation (0x00/0x01) keeps a leaf
from being passed off as an inner node, and the fixed shape makes two kinds of proof possible:

- inclusion: entry i is in the tree of size n with root R (log n hashes);
- consistency: the tree of size m with root R1 is a prefix of the tree of size n with root R2, i.e. the
  log only grew between two signed checkpoints (log n hashes) — an outsider checks this from the
  published checkpoints alone.

Functions here take the leaf hashes (``leaf_hash(entry)``) so a caller can keep them and not rehash.
Everything is pure; nothing here knows about databases or keys.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof was asked for sizes or an index that do not fit the tree."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The roots of the perfect subtrees over the leaves pushed so far (strictly decreasing heights).

    Two subtrees of equal height merge as soon as they appear, so memory is O(log n); folding the
    frontier right to left gives the tree head, which is exactly the RFC's left-heavy split.
    """

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (height, subtree root)

    def push(self, leaf: bytes) -> None:
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            node = node_hash(self._stack.pop()[1], node)
            height += 1
        self._stack.append((height, node))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """The tree head over the leaves, in one pass with O(log n) memory."""
    frontier = Frontier()
    for leaf in leaf_hashes:
        frontier.push(leaf)
    return frontier.root()


def prefix_roots(leaf_hashes: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The tree heads of several prefixes (e.g. every checkpoint's size) in one pass over the leaves.

    Sizes beyond the number of leaves are left out of the answer: there is no such tree.
    """
    wanted = sorted(set(sizes))
    frontier, roots = Frontier(), {}
    if wanted and wanted[0] == 0:
        roots[0] = EMPTY_ROOT
    pending = [s for s in wanted if s > 0]
    i = 0
    for leaf in leaf_hashes:
        if i == len(pending):
            break
        frontier.push(leaf)
        while i < len(pending) and pending[i] == frontier.size:
            roots[frontier.size] = frontier.root()
            i += 1
    return roots


def _split(n: int) -> int:
    """The largest power of two strictly below n (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    return root(leaves[start:end])


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]): the sibling hashes from the leaf up to the root."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ProofError(f"no leaf {index} in a tree of {size} (have {len(leaves)} leaves)")
    return _path(leaves, index, 0, size)


def _path(leaves: Sequence[bytes], index: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _split(n)
    if index < k:
        return _path(leaves, index, start, start + k) + [_subtree(leaves, start + k, end)]
    return _path(leaves, index - k, start + k, end) + [_subtree(leaves, start, start + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: recompute the root from the leaf hash and its path."""
    if not 0 <= index < size:
        return False
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            node = node_hash(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and node == expected_root


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """RFC 6962 PROOF(old_size, D[0:new_size]): what shows the first tree is a prefix of the second."""
    new_size = len(leaves) if new_size is None else new_size
    if not 0 <= old_size <= new_size <= len(leaves):
        raise ProofError(f"no consistency proof from {old_size} to {new_size} (have {len(leaves)} leaves)")
    if old_size in (0, new_size):
        return []  # the empty tree is a prefix of every tree; a tree is a prefix of itself
    return _subproof(leaves, old_size, 0, new_size, complete=True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [_subtree(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return _subproof(leaves, m, start, start + k, complete) + [_subtree(leaves, start + k, end)]
    return _subproof(leaves, m - k, start + k, end, False) + [_subtree(leaves, start, start + k)]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: both roots recomputed from the proof, or False."""
    if not 0 <= old_size <= new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof  # nothing to be consistent with
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a perfect subtree: its root is the proof's implicit first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
