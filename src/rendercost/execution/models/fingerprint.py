"""A model folder's fingerprint: one SHA-256 over every file in it, computed once and memoized.

Caches key results on it, so a changed weight file changes every key. Hashing a multi-GB SDXL folder
takes seconds, so the result is memoized in ``memo_dir`` (never in the model folder, which may be
read-only or the Hugging Face cache), keyed by each file's path, size and mtime.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

_CHUNK = 1 << 20


def _files(folder: Path) -> list[Path]:
    """Every regular file under ``folder``, hidden ones (and hidden folders) left out, sorted."""
    found = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def sha256_file(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def fingerprint_folder(folder: Path, memo_dir: Path) -> str:
    """SHA-256 (hex) over the relative path and content hash of every file in ``folder``."""
    folder = folder.resolve()
    files = _files(folder)
    stamp = [[p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo = memo_dir / f"{hashlib.sha256(str(folder).encode()).hexdigest()[:24]}.json"
    try:
        saved = json.loads(memo.read_text())
        if saved.get("files") == stamp and isinstance(saved.get("fingerprint"), str):
            return str(saved["fingerprint"])
    except (OSError, ValueError):
        pass  # no memo yet, or an unreadable one: recompute
    digest = hashlib.sha256()
    for path, (relative, _, _) in zip(files, stamp, strict=True):
        digest.update(f"{relative}\0{sha256_file(path)}\n".encode())
    fingerprint = digest.hexdigest()
    write_memo(memo, {"folder": str(folder), "files": stamp, "fingerprint": fingerprint})
    return fingerprint


def write_memo(memo: Path, data: dict[str, object]) -> None:
    """Write ``data`` as JSON to ``memo`` atomically (temp file + rename)."""
    memo.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=memo.parent, suffix=".tmp")
    with os.fdopen(handle, "w") as out:
        json.dump(data, out)
    os.replace(temporary, memo)
