"""Where a model's files are: a local diffusers folder, or a hub id found in the offline HF cache.

rendercost never downloads weights: a hub id loads only when ``huggingface_hub`` already has it.
"""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import HFValidationError, LocalEntryNotFoundError

from rendercost.errors import ModelLoadFailed

_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]*[A-Za-z0-9]$")
MODEL_INDEX = "model_index.json"  # marks a diffusers pipeline folder


def is_hub_id(source: str) -> bool:
    """True for ``owner/name`` that is not an existing local path."""
    return bool(_HUB_ID_RE.match(source)) and not Path(source).expanduser().exists()


def resolve_source(source: str) -> Path:
    """The folder holding ``source``'s files; ``ModelLoadFailed`` says why there is none."""
    if is_hub_id(source):
        return _cached_snapshot(source)
    folder = Path(source).expanduser()
    if not folder.is_dir():
        raise ModelLoadFailed(
            f"model folder {folder} does not exist (and {source!r} is not a hub id of the form owner/name)"
        )
    if not (folder / MODEL_INDEX).is_file():
        raise ModelLoadFailed(f"{folder} is not a diffusers pipeline folder: it has no {MODEL_INDEX}")
    return folder


def _cached_snapshot(hub_id: str) -> Path:
    try:
        folder = Path(snapshot_download(hub_id, local_files_only=True))
    except (LocalEntryNotFoundError, HFValidationError) as exc:
        raise ModelLoadFailed(
            f"model {hub_id!r} is not in the local Hugging Face cache, and rendercost loads hub models "
            f"offline: download it first (hf download {hub_id}) or configure a local diffusers folder"
        ) from exc
    if not (folder / MODEL_INDEX).is_file():
        raise ModelLoadFailed(
            f"cached model {hub_id!r} ({folder}) is not a diffusers pipeline: no {MODEL_INDEX}"
        )
    return folder
