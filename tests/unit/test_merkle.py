"""The audit Merkle tree against RFC 6962's own recursion and the Certificate Transparency test vectors."""

import hashlib

import pytest

from services.compliance.merkle import (
    EMPTY_ROOT, ProofError, consistency_proof, inclusion_proof, leaf_hash, node_hash, prefix_roots, root,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves and tree heads every RFC 6962 implementation is tested on (certificate-transparency's
# merkle tests): MTH(D[0:n]) for n = 0..8.
CT_ENTRIES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43", bytes(range(0x50, 0x58)),
              bytes(range(0x60, 0x70))]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_CONSISTENCY = [
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CT_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
]


# --- an independent, literal transcription of RFC 6962 §2.1 over raw entries -----------------------------
def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def k_of(n: int) -> int:
    k = 1
    while k * 2 < n:  # counted, not bit-twiddled, so it cannot share a bug with the code under test
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha(b"")
    if len(d) == 1:
        return sha(b"\x00" + d[0])
    k = k_of(len(d))
    return sha(b"\x01" + mth(d[:k]) + mth(d[k:]))


def entries(n: int) -> list[bytes]:
    return [f"row {i}".encode() for i in range(n)]


def hashes(d: list[bytes]) -> list[bytes]:
    return [leaf_hash(e) for e in d]


# --- tests -------------------------------------------------------------------------------------------
def test_hashing_is_domain_separated():
    assert leaf_hash(b"abc") == sha(b"\x00abc")
    left, right = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(left, right) == sha(b"\x01" + left + right)
    assert leaf_hash(left + right) != node_hash(left, right)
    assert EMPTY_ROOT == sha(b"")


@pytest.mark.parametrize("n", range(9))
def test_roots_match_the_ct_vectors(n):
    assert root(hashes(CT_ENTRIES[:n])).hex() == CT_ROOTS[n]


def test_roots_match_the_rfc_recursion_for_every_size_up_to_70():
    for n in range(71):
        d = entries(n)
        assert root(hashes(d)) == mth(d), n


@pytest.mark.parametrize(("old", "new", "expected"), CT_CONSISTENCY)
def test_consistency_proofs_match_the_ct_vectors(old, new, expected):
    leaves = hashes(CT_ENTRIES)
    proof = consistency_proof(leaves, old, new)
    assert [p.hex() for p in proof] == expected
    assert verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new]), proof)


@pytest.mark.parametrize(("index", "size", "expected"), CT_INCLUSION)
def test_inclusion_proofs_match_the_ct_vectors(index, size, expected):
    leaves = hashes(CT_ENTRIES)
    proof = inclusion_proof(leaves, index, size)
    assert [p.hex() for p in proof] == expected
    assert verify_inclusion(leaves[index], index, size, proof, bytes.fromhex(CT_ROOTS[size]))


def test_every_consistency_proof_verifies_and_every_corruption_fails():
    d = entries(33)
    leaves = hashes(d)
    for new in range(1, 34):
        for old in range(1, new + 1):
            proof = consistency_proof(leaves, old, new)
            old_root, new_root = mth(d[:old]), mth(d[:new])
            assert verify_consistency(old, new, old_root, new_root, proof), (old, new)
            for i in range(len(proof)):
                bad = list(proof)
                bad[i] = sha(bad[i])
                assert not verify_consistency(old, new, old_root, new_root, bad), (old, new, i)
            if old < new:
                # a rewritten prefix: the old tree with its first entry changed is not a prefix of the new one
                forged_old = mth([b"forged", *d[1:old]])
                assert not verify_consistency(old, new, forged_old, new_root, proof), (old, new)
                assert not verify_consistency(old, new, old_root, new_root, proof[:-1]), (old, new)


def test_every_inclusion_proof_verifies_and_wrong_claims_fail():
    d = entries(21)
    leaves = hashes(d)
    for size in range(1, 22):
        tree_root = mth(d[:size])
        for index in range(size):
            proof = inclusion_proof(leaves, index, size)
            assert verify_inclusion(leaves[index], index, size, proof, tree_root)
            assert not verify_inclusion(leaf_hash(b"forged"), index, size, proof, tree_root)
            if size > 1:
                other = (index + 1) % size
                assert not verify_inclusion(leaves[index], other, size, proof, tree_root)


def test_edge_cases_of_consistency():
    d = entries(8)
    r8, r6 = mth(d), mth(d[:6])
    assert verify_consistency(0, 8, EMPTY_ROOT, r8, [])
    assert verify_consistency(8, 8, r8, r8, [])
    assert not verify_consistency(8, 8, r6, r8, [])
    assert not verify_consistency(8, 6, r8, r6, [])  # a log that shrank is never consistent
    assert not verify_consistency(6, 8, r6, r8, [])  # a missing proof is no proof


def test_proofs_refuse_impossible_sizes():
    leaves = hashes(entries(4))
    with pytest.raises(ProofError):
        consistency_proof(leaves, 5, 4)
    with pytest.raises(ProofError):
        consistency_proof(leaves, 2, 5)
    with pytest.raises(ProofError):
        inclusion_proof(leaves, 4, 4)


def test_prefix_roots_are_the_roots_of_each_prefix_in_one_pass():
    d = entries(40)
    sizes = [0, 1, 2, 3, 7, 8, 9, 16, 33, 40, 41]
    roots = prefix_roots(hashes(d), sizes)
    assert set(roots) == set(sizes) - {41}  # no tree of 41 leaves exists
    for size in roots:
        assert roots[size] == mth(d[:size]), size
