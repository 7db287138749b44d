"""LocalArtifactStore: files in a folder, content-addressed, written atomically.

A file with SHA-256 ``abcdef...`` and suffix ``png`` lives at ``ROOT/ab/cd/abcdef....png``; its key is
that relative path. Writes go to a temp file in the destination folder, are fsynced, and are moved into
place with ``os.replace``, so a reader sees a whole file or none. A crash can leave a temp file behind;
``sweep_temp_files`` (run when the store is opened) removes those of dead processes on this host and
old ones of any host. Temp names are ``.tmp-<host>-<pid>-<random>``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from pathlib import Path

from rendercost.artifacts.keys import content_key, is_key
from rendercost.artifacts.protocol import ArtifactRef, PresignedUrl
from rendercost.errors import NotFound

TEMP_PREFIX = ".tmp-"  # every temp file the store writes starts with this
DEFAULT_SWEEP_AGE_S = 3600.0  # temp files older than this are orphans, whichever host wrote them


class LocalArtifactStore:
    """An ``ArtifactStore`` over a local folder; safe to share between threads and processes."""

    backend = "local"  # the catalog's storage backend for this store

    def __init__(self, root: Path, *, sweep_older_than_s: float | None = DEFAULT_SWEEP_AGE_S) -> None:
        """Open (and create) ``root``; sweep temp files older than ``sweep_older_than_s`` (None: skip)."""
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        if sweep_older_than_s is not None:
            self.sweep_temp_files(sweep_older_than_s)

    def put(self, data: bytes, *, media_type: str, suffix: str) -> ArtifactRef:
        """Store ``data`` under its content address; storing the same bytes again is a no-op."""
        key, digest = content_key(data, suffix)
        path = self.root / key
        if not path.exists():
            _write_atomic(path, data)
        return ArtifactRef(key=key, size_bytes=len(data), sha256=digest, media_type=media_type)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"artifact {key} not found") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file; deleting an absent key is not an error."""
        self._path(key).unlink(missing_ok=True)

    def local_path(self, key: str) -> str | None:
        return str(self._path(key))

    def presigned_url(self, key: str, lifetime_s: int) -> PresignedUrl | None:
        """Always None: a local folder has no URLs of its own (the API serves the bytes)."""
        return None

    def sweep_temp_files(self, older_than_s: float = DEFAULT_SWEEP_AGE_S) -> int:
        """Delete orphaned temp files; return how many. A temp file is an orphan when the process that
        wrote it (on this host) is gone, or when it was last modified more than ``older_than_s`` ago."""
        cutoff = time.time() - older_than_s
        removed = 0
        for temp in self.root.rglob(f"{TEMP_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                if temp.is_file() and (_writer_is_dead(temp.name) or temp.stat().st_mtime <= cutoff):
                    temp.unlink()
                    removed += 1
        return removed

    def _path(self, key: str) -> Path:
        if not is_key(key):
            raise NotFound(f"artifact {key} not found")
        return self.root / key


def _temp_prefix() -> str:
    return f"{TEMP_PREFIX}{socket.gethostname()}-{os.getpid()}-"


def _writer_is_dead(name: str) -> bool:
    """True when ``name`` was written by a process of this host that no longer exists."""
    try:
        host_part, pid_text, _random = name.rsplit("-", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host_part != f"{TEMP_PREFIX}{socket.gethostname()}" or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by someone else
        return False
    return False


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so it appears whole or not at all, even across a crash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(), dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o644)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
