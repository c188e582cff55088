"""One contract, every KeyManager adapter: wrapping, pseudonyms, and destruction that is for real."""

from __future__ import annotations

import os

import pytest

from fedstream.security.keys import (
    InMemoryKeyManager,
    KeyDestroyed,
    KeyringCorrupt,
    LocalKeyring,
    UnknownKey,
    open_key_manager,
)
from schemas.base import Identifier
from pydantic import TypeAdapter


@pytest.fixture(params=["memory-fake", "local-keyring"])
def keys(request, tmp_path):
    if request.param == "memory-fake":
        return InMemoryKeyManager()
    return open_key_manager(f"local://{tmp_path / 'keyring'}")


def test_a_wrapped_data_key_unwraps_to_itself(keys):
    data_key = os.urandom(32)
    wrapped = keys.wrap("hospital-a", data_key)
    assert data_key not in wrapped
    assert keys.unwrap(wrapped) == data_key


def test_owners_have_their_own_keys(keys):
    a, b = keys.wrap("hospital-a", b"k" * 32), keys.wrap("hospital-b", b"k" * 32)
    assert keys.key_ids("hospital-a") != keys.key_ids("hospital-b")
    assert keys.unwrap(a) == keys.unwrap(b) == b"k" * 32


def test_pseudonyms_are_stable_distinct_identifiers_that_do_not_contain_the_owner(keys):
    p = keys.pseudonym("hospital-a")
    assert p == keys.pseudonym("hospital-a") != keys.pseudonym("hospital-b")
    assert "hospital" not in p
    TypeAdapter(Identifier).validate_python(p)


def test_destroying_shreds_every_key_of_the_owner_and_only_those(keys):
    mine, theirs = keys.wrap("hospital-a", b"1" * 32), keys.wrap("hospital-b", b"2" * 32)
    ids = keys.key_ids("hospital-a")
    assert keys.destroy("hospital-a") == ids and ids
    with pytest.raises(KeyDestroyed):
        keys.unwrap(mine)
    assert keys.unwrap(theirs) == b"2" * 32
    assert keys.key_ids("hospital-a") == ()


def test_a_destroyed_owner_gets_no_new_key(keys):
    keys.wrap("hospital-a", b"1" * 32)
    keys.destroy("hospital-a")
    with pytest.raises(KeyDestroyed):
        keys.wrap("hospital-a", b"1" * 32)
    with pytest.raises(KeyDestroyed):
        keys.pseudonym("hospital-a")


def test_tampered_or_foreign_wrapped_keys_are_refused(keys):
    wrapped = bytearray(keys.wrap("hospital-a", b"1" * 32))
    wrapped[-1] ^= 1
    with pytest.raises(UnknownKey):
        keys.unwrap(bytes(wrapped))
    with pytest.raises(UnknownKey):
        keys.unwrap(InMemoryKeyManager().wrap("hospital-a", b"1" * 32))


# --- the local keyring's own promises -------------------------------------------------------------


def test_the_keyring_file_names_no_owner_and_forgets_destroyed_keys(tmp_path):
    master = os.urandom(32)
    ring = LocalKeyring(tmp_path, master)
    ring.wrap("hospital-a", b"1" * 32)
    (key_id,) = ring.key_ids("hospital-a")
    on_disk = (tmp_path / "keyring").read_bytes()
    assert b"hospital-a" not in on_disk and key_id.encode() not in on_disk  # encrypted as a whole
    ring.destroy("hospital-a")
    state = ring._read()
    assert key_id not in state["keys"] and "hospital-a" not in str(state)


def test_a_second_process_sees_keys_and_destruction_through_the_file(tmp_path):
    master = os.urandom(32)
    writer, reader = LocalKeyring(tmp_path, master), LocalKeyring(tmp_path, master)
    wrapped = writer.wrap("hospital-a", b"1" * 32)
    assert reader.unwrap(wrapped) == b"1" * 32
    assert reader.pseudonym("hospital-a") == writer.pseudonym("hospital-a")
    writer.destroy("hospital-a")
    with pytest.raises(KeyDestroyed):
        reader.unwrap(wrapped)


def test_the_wrong_master_key_is_a_named_error(tmp_path):
    LocalKeyring(tmp_path, os.urandom(32)).wrap("hospital-a", b"1" * 32)
    with pytest.raises(KeyringCorrupt):
        LocalKeyring(tmp_path, os.urandom(32)).unwrap(b"FK1" + b"\0" * 60)


def test_the_generated_master_key_file_is_private(tmp_path):
    open_key_manager(f"local://{tmp_path}").wrap("x", b"1" * 32)
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
