"""Single-file checkpoints: the ``.safetensors`` SDXL files Civitai and AUTOMATIC1111 use.

A model whose ``source`` is a ``.safetensors`` file loads with diffusers' single-file loader over a
config folder that is never fetched: the model's ``config`` setting, else ``SHIPPED_SDXL_CONFIG`` (the
SDXL-base configs and CLIP tokenizers shipped in this package; ``tools/single_file_config.py`` wrote
them). Every ``models_dir/checkpoints/NAME.safetensors`` is a model called ``NAME`` (``discover``).
The weights fingerprint is the file's SHA-256 (``file_sha256``), memoized by path, size and mtime so
a multi-GB file is hashed once, not at every start; A1111's short "Model hash" is its first 10 digits.
Nothing here imports torch: ``load_pipeline`` imports diffusers when called.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from rendercost.errors import ModelLoadFailed
from rendercost.execution.models.fingerprint import sha256_file, write_memo
from rendercost.execution.models.sources import MODEL_INDEX
from rendercost.settings import ModelConfig, Settings

CHECKPOINT_SUFFIX = ".safetensors"
CHECKPOINTS_DIR = "checkpoints"  # under settings.resolved_models_dir
SHIPPED_SDXL_CONFIG = (
    Path(str(resources.files("rendercost.execution.models"))) / "single_file_config" / "sdxl-base"
)
_PICKLED = frozenset({".ckpt", ".pt", ".pth", ".bin", ".pkl"})


def is_single_file(source: str) -> bool:
    """True when ``source`` names a weights file (``.safetensors``, or a pickle file to refuse)."""
    return Path(source).suffix.lower() in {CHECKPOINT_SUFFIX, *_PICKLED}


def discover(settings: Settings) -> dict[str, ModelConfig]:
    """``NAME -> ModelConfig`` for every ``NAME.safetensors`` in ``models_dir/checkpoints`` (sorted)."""
    folder = settings.resolved_models_dir / CHECKPOINTS_DIR
    if not folder.is_dir():
        return {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == CHECKPOINT_SUFFIX)
    return {path.stem: ModelConfig(source=str(path)) for path in files}


def with_discovered(settings: Settings) -> dict[str, ModelConfig]:
    """The configured models plus the discovered checkpoints (a configured name wins)."""
    return {**discover(settings), **settings.models}


def checkpoint_file(name: str, source: str) -> Path:
    """The checked checkpoint file of model ``name``; ``ModelLoadFailed`` says what is wrong."""
    path = Path(source).expanduser()
    if path.suffix.lower() in _PICKLED:
        raise ModelLoadFailed(
            f"model {name!r}: {path} is a pickle checkpoint (code runs when it is read); convert it to "
            ".safetensors (safetensors.torch.save_file)"
        )
    if not path.is_file():
        raise ModelLoadFailed(f"model {name!r}: checkpoint file {path} does not exist")
    return path


def config_folder(name: str, config: Path | None) -> Path:
    """The diffusers config folder of a single-file model (``config``, else the shipped SDXL base)."""
    folder = (config or SHIPPED_SDXL_CONFIG).expanduser()
    if not (folder / MODEL_INDEX).is_file():
        raise ModelLoadFailed(f"model {name!r}: config folder {folder} has no {MODEL_INDEX}")
    return folder


def file_sha256(path: Path, memo_dir: Path) -> str:
    """SHA-256 (hex) of ``path``'s bytes, memoized in ``memo_dir`` by path, size and mtime."""
    path = path.resolve()
    stat = path.stat()
    stamp = [str(path), stat.st_size, stat.st_mtime_ns]
    memo = memo_dir / f"file-{hashlib.sha256(str(path).encode()).hexdigest()[:24]}.json"
    try:
        saved = json.loads(memo.read_text())
        if saved.get("stamp") == stamp and isinstance(saved.get("sha256"), str):
            return str(saved["sha256"])
    except (OSError, ValueError):
        pass  # no memo yet, or an unreadable one: hash the file
    digest = sha256_file(path)
    write_memo(memo, {"stamp": stamp, "sha256": digest})
    return digest


def load_pipeline(checkpoint: Path, config: Path, dtype: Any, options: Mapping[str, Any]) -> Any:
    """``StableDiffusionXLPipeline.from_single_file`` over ``config``, offline (nothing fetched)."""
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_single_file(
        str(checkpoint), config=str(config), local_files_only=True, torch_dtype=dtype, **options
    )
