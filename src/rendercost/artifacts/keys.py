"""Content addresses: the key of a file is ``ab/cd/<sha256>.<suffix>``, whatever store holds it."""

from __future__ import annotations

import hashlib
import re

from rendercost.errors import InvalidRequest

_KEY_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}(\.[a-z0-9]{1,10})?$")
_SUFFIX_RE = re.compile(r"^[a-z0-9]{1,10}$")


def content_key(data: bytes, suffix: str) -> tuple[str, str]:
    """``(key, sha256 hex)`` of ``data``; ``InvalidRequest`` for a suffix that is not 1-10 letters or
    digits (a leading dot and capitals are accepted and normalised)."""
    suffix = suffix.lower().lstrip(".")
    if suffix and not _SUFFIX_RE.match(suffix):
        raise InvalidRequest(f"artifact suffix {suffix!r} must be 1-10 letters or digits", param="suffix")
    digest = hashlib.sha256(data).hexdigest()
    return f"{digest[:2]}/{digest[2:4]}/{digest}" + (f".{suffix}" if suffix else ""), digest


def is_key(key: str) -> bool:
    """True when ``key`` is a content address (anything else names no stored file)."""
    return _KEY_RE.match(key) is not None
