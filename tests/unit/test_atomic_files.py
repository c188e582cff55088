"""Atomic writes: a replacement is whole or absent; a file created once is never overwritten; both private."""

from __future__ import annotations

import stat

from fedstream.storage.files import create_once, replace_atomically


def test_a_replacement_leaves_the_new_content_private_and_no_temporary_file(tmp_path):
    path = tmp_path / "d" / "f"
    replace_atomically(path, b"one")
    replace_atomically(path, b"two", durable=True)
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["f"]


def test_a_file_created_once_keeps_the_first_writers_content(tmp_path):
    path = tmp_path / "secrets" / "k"
    assert create_once(path, b"first")
    assert not create_once(path, b"second")
    assert path.read_bytes() == b"first"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["k"]
