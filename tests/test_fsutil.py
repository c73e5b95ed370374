"""Ownership markers, --force and safe names: edgecompress deletes only what it made."""

from __future__ import annotations

import json

import pytest

from edgecompress.errors import UserError
from edgecompress.fsutil import (
    OUTPUT_MARKER,
    atomic_directory,
    check_replaceable,
    inside,
    is_marked_output,
    mark_output,
    safe_name,
)


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


# --- before writing: room, write errors, one writer at a time ---------------------------------

@pytest.fixture
def readonly_dir(tmp_path):
    from tests.adversarial.mounts import tmpfs

    with tmpfs(tmp_path / "ro", readonly=True) as where:
        yield where


def test_check_output_room_passes_and_leaves_nothing_when_the_folder_is_writable(tmp_path):
    from edgecompress.fsutil import check_output_room

    check_output_room(tmp_path / "new" / "out", need_bytes=1)
    assert list(tmp_path.iterdir()) == []  # the probe file is gone, no folder was made


def test_check_output_room_refuses_when_the_file_system_has_not_the_room(tmp_path):
    import shutil

    from edgecompress.fsutil import check_output_room

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(UserError, match="not enough space for .* [MG]B free on its file "
                                        "system, about .* needed"):
        check_output_room(tmp_path / "out", need_bytes=free * 2)


def test_check_output_room_refuses_when_the_folder_is_mounted_read_only(readonly_dir):
    from edgecompress.fsutil import check_output_room

    with pytest.raises(UserError, match="is not writable .*Read-only file system"):
        check_output_room(readonly_dir / "out")


def test_write_error_is_one_line_when_the_disk_is_full_and_none_when_it_is_a_bug():
    import errno

    from edgecompress.fsutil import write_error

    full = OSError(errno.ENOSPC, "No space left on device", "/x/model.onnx")
    assert write_error(full) == "cannot write /x/model.onnx: No space left on device"
    assert write_error(OSError(errno.EBADF, "Bad file descriptor")) is None
    denied = OSError(errno.EACCES, "Permission denied", "/x/a")  # a read or a write
    assert write_error(denied) == "cannot access /x/a: Permission denied"
    rust = RuntimeError("Error while serializing: I/O error: No space left on device (os "
                        "error 28)")  # how safetensors words it
    assert write_error(rust) == "cannot write: No space left on device"
    assert write_error(RuntimeError("shape mismatch (os error 9)")) is None


def test_held_lock_refuses_a_second_holder_when_the_first_still_holds_it(tmp_path):
    import os

    from edgecompress.fsutil import LOCK_FILE, held_lock

    with held_lock(tmp_path):
        holder = json.loads((tmp_path / LOCK_FILE).read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(UserError, match=f"in use by another edgecompress run "
                                            f"\\(pid {os.getpid()} on "):
            with held_lock(tmp_path):  # flock is per open file: a second open conflicts
                pass
    assert not (tmp_path / LOCK_FILE).exists()
    with held_lock(tmp_path):  # free again once released
        pass


def test_held_lock_is_taken_over_and_said_so_when_its_process_is_gone(tmp_path):
    import subprocess
    import sys

    from edgecompress.fsutil import LOCK_FILE, held_lock

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": dead_pid, "host": "h"}))
    notes = []
    with held_lock(tmp_path, on_stale=notes.append):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] != dead_pid
    assert len(notes) == 1 and f"pid {dead_pid} on h" in notes[0], notes
    assert "no longer running" in notes[0]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_held_lock_is_released_when_the_block_fails(tmp_path, error):
    from edgecompress.fsutil import LOCK_FILE, held_lock

    with pytest.raises(error):
        with held_lock(tmp_path):
            raise error()
    assert not (tmp_path / LOCK_FILE).exists()
    with held_lock(tmp_path, on_stale=pytest.fail):  # not stale: nothing left behind
        pass


def _holder(folder, seconds: float):
    """A child process that holds `folder`'s lock for `seconds`, once it has said "held"."""
    import subprocess
    import sys

    code = ("import sys, time; from pathlib import Path; from edgecompress.fsutil import "
            "held_lock\nwith held_lock(Path(sys.argv[1])):\n print('held', flush=True); "
            f"time.sleep({seconds})")
    child = subprocess.Popen([sys.executable, "-c", code, str(folder)],
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_held_lock_outlives_its_holder_only_as_a_stale_file_when_the_holder_is_killed(tmp_path):
    import signal

    from edgecompress.fsutil import LOCK_FILE, held_lock

    child = _holder(tmp_path, 60)
    try:
        with pytest.raises(UserError, match=f"pid {child.pid} "):
            with held_lock(tmp_path):
                pass
    finally:
        child.send_signal(signal.SIGKILL)  # kill -9: no cleanup runs, the kernel drops flock
        child.wait()
    assert (tmp_path / LOCK_FILE).exists()
    notes = []
    with held_lock(tmp_path, on_stale=notes.append):
        pass
    assert len(notes) == 1 and f"pid {child.pid}" in notes[0]


def test_held_lock_with_wait_takes_the_folder_once_its_holder_lets_go(tmp_path):
    import time

    from edgecompress.fsutil import LOCK_FILE, held_lock

    child = _holder(tmp_path, 1.5)
    try:
        with pytest.raises(UserError, match="in use"):  # without wait: refused at once
            with held_lock(tmp_path):
                pass
        began = time.monotonic()
        with held_lock(tmp_path, wait=True, on_stale=pytest.fail):
            waited = time.monotonic() - began  # the holder sleeps 1.5 s after saying "held"
            assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] != child.pid
        assert waited > 0.5
    finally:
        child.kill()
        child.wait()


def test_emulation_build_lock_is_reentrant_in_one_process_and_held_in_the_cache(tmp_path,
                                                                               monkeypatch):
    from edgecompress.fsutil import CACHE_ENV, LOCK_FILE
    from edgecompress.targets import emulation

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    with emulation.build_lock():
        assert (tmp_path / "emulation" / LOCK_FILE).is_file()
        with emulation.build_lock():  # a build probing its own CPU root: no deadlock
            pass
        assert (tmp_path / "emulation" / LOCK_FILE).is_file()
    assert not (tmp_path / "emulation" / LOCK_FILE).exists()
