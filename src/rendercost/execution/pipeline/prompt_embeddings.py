"""The runner's seam to the text-embedding cache: encode a batch's prompts, or load them.

``CachedEncoder.encode(specs, uses_cfg, loras, encode)`` returns the four tensors the pipeline needs
(prompt, pooled, negative, negative pooled; negatives None without CFG) and whether they ALL came from
the cache. A batch is answered from the cache only when every image's row is there; otherwise the
batch is encoded as usual (one encoder call) and each row is stored. Rows are safetensors blobs
(``safetensors.torch.save``): tensors only, never pickle. ``encode_seconds_per_image`` is a running
mean of real encodes, the estimate a hit's cost-avoided line is priced at.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from rendercost.caches.embedding_cache import EmbeddingCache, FileEmbeddingCache, embedding_key
from rendercost.caches.redis_client import connect
from rendercost.caches.redis_embedding_cache import RedisEmbeddingCache
from rendercost.domain.specs import RenderSpec
from rendercost.settings import Settings

Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]
Encode = Callable[[], Tensors]  # encodes the whole batch (the pipeline's encode_prompt)
NAMES = ("prompt", "pooled", "negative", "negative_pooled")


@dataclass(frozen=True)
class Encoded:
    tensors: Tensors  # prompt, pooled, negative, negative_pooled (negatives None without CFG)
    from_cache: bool  # every row came from the cache: the encoders did not run


class CachedEncoder:
    """Embedding-cache lookups and stores for one runner; thread-safe."""

    def __init__(self, cache: EmbeddingCache, fingerprint: Callable[[str], str]) -> None:
        self._cache = cache
        self._fingerprint = fingerprint
        self._lock = threading.Lock()
        self._encoded_images = 0
        self._encode_seconds = 0.0

    def keys(
        self, specs: Sequence[RenderSpec], uses_cfg: bool, loras: Sequence[tuple[str, float]]
    ) -> list[str]:
        fingerprint = self._fingerprint(specs[0].model)
        return [
            embedding_key(fingerprint, spec.prompt, spec.negative_prompt, uses_cfg=uses_cfg, loras=loras)
            for spec in specs
        ]

    def encode(
        self,
        specs: Sequence[RenderSpec],
        *,
        uses_cfg: bool,
        loras: Sequence[tuple[str, float]],
        device: torch.device,
        encode: Encode,
    ) -> Encoded:
        keys = self.keys(specs, uses_cfg, loras)
        blobs = [self._cache.get(key) for key in keys]
        if all(blob is not None for blob in blobs):
            rows = [load_tensors(blob) for blob in blobs if blob is not None]
            return Encoded(_stack(rows, uses_cfg, device), from_cache=True)
        tensors = encode()
        for i, key in enumerate(keys):
            row = {
                name: t[i : i + 1].detach().to("cpu").contiguous()
                for name, t in zip(NAMES, tensors, strict=True)
                if t is not None
            }
            self._cache.put(key, save_tensors(row))
        return Encoded(tensors, from_cache=False)

    def observe(self, seconds: float, images: int) -> None:
        """Record a real encode of ``images`` prompts that took ``seconds``."""
        with self._lock:
            self._encode_seconds += seconds
            self._encoded_images += images

    def encode_seconds_per_image(self) -> float:
        with self._lock:
            return self._encode_seconds / self._encoded_images if self._encoded_images else 0.0


def _stack(rows: list[dict[str, torch.Tensor]], uses_cfg: bool, device: torch.device) -> Tensors:
    def cat(name: str) -> torch.Tensor:
        return torch.cat([row[name] for row in rows]).to(device)  # stored in the encoder's own dtype

    if uses_cfg:
        return cat("prompt"), cat("pooled"), cat("negative"), cat("negative_pooled")
    return cat("prompt"), cat("pooled"), None, None


def encoder_from_settings(
    settings: Settings, fingerprint: Callable[[str], str], on_lookup: Callable[[bool], None] | None = None
) -> CachedEncoder | None:
    """The runner's embedding cache: shared in Redis when ``settings.redis_url`` is set, else under
    ``data_dir/cache/embeddings``; None when the TTL is 0."""
    if settings.embedding_cache_ttl_seconds <= 0:
        return None
    return CachedEncoder(embedding_cache(settings, on_lookup), fingerprint)


def embedding_cache(settings: Settings, on_lookup: Callable[[bool], None] | None = None) -> EmbeddingCache:
    """``RedisEmbeddingCache`` on ``settings.redis_url`` (fail-fast client), else ``FileEmbeddingCache``."""
    if settings.redis_url is not None:
        client = connect(settings.redis_url, settings.redis_timeout_s)
        return RedisEmbeddingCache(client, settings.embedding_cache_ttl_seconds, on_lookup=on_lookup)
    return FileEmbeddingCache(
        Path(settings.data_dir) / "cache" / "embeddings",
        settings.embedding_cache_ttl_seconds,
        max_entries=settings.embedding_cache_max_entries,
        on_lookup=on_lookup,
    )
