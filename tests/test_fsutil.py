"""Ownership markers, --force and safe names: edgecompress deletes only what it made."""

from __future__ import annotations

import json

import pytest

from edgecompress.errors import UserError
from edgecompress.fsutil import (OUTPUT_MARKER, atomic_directory, check_replaceable, inside,
                                 is_marked_output, mark_output, safe_name)


def _users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "manifest.json").write_text('{"mine": true}')
    return folder


def test_check_replaceable_refuses_with_marker_message_when_dir_holds_only_manifest_json(tmp_path):
    folder = _users_folder(tmp_path)
    with pytest.raises(UserError) as info:
        check_replaceable(folder, force=True)
    message = str(info.value)
    assert "not an edgecompress output" in message and OUTPUT_MARKER in message
    assert "\n" not in message
    assert (folder / "manifest.json").read_text() == '{"mine": true}'


def test_check_replaceable_accepts_force_when_dir_is_marked(tmp_path):
    folder = _users_folder(tmp_path)
    marker = mark_output(folder, "run")
    check_replaceable(folder, force=True)  # no error
    data = json.loads(marker.read_text())
    assert (data["tool"], data["kind"], len(data["id"])) == ("edgecompress", "run", 32)
    assert data["created"].startswith("20")


def test_check_replaceable_asks_for_force_when_marked_dir_is_not_forced(tmp_path):
    folder = _users_folder(tmp_path)
    mark_output(folder, "run")
    with pytest.raises(UserError, match="--force"):
        check_replaceable(folder, force=False)


@pytest.mark.parametrize("content", [b"not json", b"\xff\xfe", b'["edgecompress"]',
                                     b'{"tool": "other"}'])
def test_check_replaceable_refuses_force_when_marker_is_invalid(tmp_path, content):
    folder = _users_folder(tmp_path)
    (folder / OUTPUT_MARKER).write_bytes(content)
    assert not is_marked_output(folder)
    with pytest.raises(UserError, match="not an edgecompress output"):
        check_replaceable(folder, force=True)


def test_check_replaceable_accepts_when_out_is_missing_or_empty(tmp_path):
    check_replaceable(tmp_path / "new", force=False)
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", force=False)


def test_check_replaceable_refuses_even_with_force_when_out_is_a_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("keep")
    with pytest.raises(UserError, match="is a file"):
        check_replaceable(path, force=True)


def test_check_replaceable_refuses_when_out_lies_under_a_file(tmp_path):
    (tmp_path / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="lies under a file"):
        check_replaceable(tmp_path / "notes.txt" / "sub" / "out", force=True)


def test_atomic_directory_replaces_marked_dir_when_the_block_succeeds(tmp_path):
    final = tmp_path / "out"
    with atomic_directory(final) as tmp:
        (tmp / "a.txt").write_text("one")
        mark_output(tmp, "test")
    with atomic_directory(final) as tmp:
        (tmp / "b.txt").write_text("two")
    assert sorted(p.name for p in final.iterdir()) == ["b.txt"]


@pytest.mark.parametrize("name", ["rpi5", "x86-cpu", "a.b_c-1", "9"])
def test_safe_name_returns_value_when_name_is_one_safe_component(name):
    assert safe_name(name, "name") == name


@pytest.mark.parametrize("name", ["../../victim", "..", ".", ".hidden", "a/b", "a\\b", "",
                                  "Upper", "a..b", "/abs", "-x", "a b", "é"])
def test_safe_name_raises_user_error_naming_what_when_name_is_unsafe(name):
    with pytest.raises(UserError, match=r"^name in x\.toml: expected") as info:
        safe_name(name, "name in x.toml")
    assert repr(name) in str(info.value)


def test_inside_returns_resolved_path_when_path_stays_under_root(tmp_path):
    assert inside(tmp_path, "a/../b") == (tmp_path / "b").resolve()


@pytest.mark.parametrize("path", ["../x", "/etc/hostname", "a/../../x"])
def test_inside_raises_user_error_when_path_leaves_root(tmp_path, path):
    with pytest.raises(UserError, match="outside"):
        inside(tmp_path / "root", path)


def test_inside_raises_user_error_when_a_symlink_points_out_of_root(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UserError, match="outside"):
        inside(root, "link/secret")


def test_file_digest_is_the_sha256_and_follows_the_bytes_when_file_changes(tmp_path):
    from edgecompress.fsutil import file_digest, sha256_file

    path = tmp_path / "data.csv"
    path.write_text("text,label\na,pos\n")
    first = file_digest(path)
    assert first == sha256_file(path) == file_digest(path)
    path.write_text("text,label\na,neg\nb,pos\n")  # new size: never the memoised digest
    assert file_digest(path) == sha256_file(path) != first
