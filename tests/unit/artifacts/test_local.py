"""LocalArtifactStore: content addressing, atomic writes, temp-file sweep."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rendercost.artifacts.local import TEMP_PREFIX, LocalArtifactStore
from rendercost.errors import InvalidRequest, NotFound


def temp_files(root: Path) -> list[Path]:
    return list(root.rglob(f"{TEMP_PREFIX}*"))


def test_same_bytes_same_key_and_fan_out_path(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    first = store.put(b"pixels", media_type="image/png", suffix="png")
    again = store.put(b"pixels", media_type="image/png", suffix=".PNG")
    digest = hashlib.sha256(b"pixels").hexdigest()
    assert first == again
    assert first.key == f"{digest[:2]}/{digest[2:4]}/{digest}.png"
    assert first.sha256 == digest
    assert first.size_bytes == 6
    assert (tmp_path / first.key).read_bytes() == b"pixels"
    assert store.get(first.key) == b"pixels"
    assert store.local_path(first.key) == str(tmp_path / first.key)


def test_different_bytes_different_keys(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    assert (
        store.put(b"a", media_type="image/png", suffix="png").key
        != store.put(b"b", media_type="image/png", suffix="png").key
    )


def test_get_missing_and_malformed_keys_are_not_found(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(NotFound):
        store.get("00/00/" + "0" * 64 + ".png")
    with pytest.raises(NotFound):
        store.get("../../etc/passwd")
    assert not store.exists("00/00/" + "0" * 64 + ".png")


def test_delete_removes_and_tolerates_absence(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    ref = store.put(b"x", media_type="image/png", suffix="png")
    assert store.exists(ref.key)
    store.delete(ref.key)
    assert not store.exists(ref.key)
    store.delete(ref.key)


def test_bad_suffix_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    with pytest.raises(InvalidRequest):
        store.put(b"x", media_type="image/png", suffix="p/../ng")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_no_temp_file_left_after_success(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path)
    for i in range(5):
        store.put(bytes([i]) * 100, media_type="image/png", suffix="png")
    assert temp_files(tmp_path) == []


def test_failed_write_leaves_neither_file_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalArtifactStore(tmp_path)

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        store.put(b"data", media_type="image/png", suffix="png")
    assert temp_files(tmp_path) == []
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_sweep_removes_old_temp_files_only(tmp_path: Path) -> None:
    folder = tmp_path / "ab" / "cd"
    folder.mkdir(parents=True)
    old = folder / f"{TEMP_PREFIX}crashed"
    old.write_bytes(b"half")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    fresh = folder / f"{TEMP_PREFIX}writing"
    fresh.write_bytes(b"in progress")
    kept = folder / "real.png"
    kept.write_bytes(b"keep")

    store = LocalArtifactStore(tmp_path, sweep_older_than_s=None)
    assert store.sweep_temp_files(older_than_s=60) == 1
    assert not old.exists()
    assert fresh.exists()
    assert kept.exists()


def test_opening_the_store_sweeps_orphans(tmp_path: Path) -> None:
    orphan = tmp_path / "00" / "11" / f"{TEMP_PREFIX}orphan"
    orphan.parent.mkdir(parents=True)
    orphan.write_bytes(b"x")
    LocalArtifactStore(tmp_path, sweep_older_than_s=0)
    assert not orphan.exists()


def test_sweep_removes_fresh_temp_files_of_dead_processes_on_this_host(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead_pid = int(dead.stdout)
    folder = tmp_path / "ab" / "cd"
    folder.mkdir(parents=True)
    host = socket.gethostname()
    orphan = folder / f"{TEMP_PREFIX}{host}-{dead_pid}-abc123"
    orphan.write_bytes(b"half")
    mine = folder / f"{TEMP_PREFIX}{host}-{os.getpid()}-xyz789"
    mine.write_bytes(b"writing")
    elsewhere = folder / f"{TEMP_PREFIX}other-host-{dead_pid}-q1w2e3"
    elsewhere.write_bytes(b"another machine")

    store = LocalArtifactStore(tmp_path, sweep_older_than_s=None)
    assert store.sweep_temp_files(older_than_s=3600) == 1
    assert not orphan.exists()
    assert mine.exists()
    assert elsewhere.exists()
