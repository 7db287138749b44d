"""Routing and cache hits of a workload under a scenario: which preset each arrival runs and whether a
cache answers it.

- Routing: ``routes`` maps a render class to a preset (``draft -> lightning``); others keep theirs.
- ``caches=None``: the hits the history saw (the ledger's result-cache and embedding-cache lines); for
  a workload file, which has none to show, hits modelled from repeats as with ``caches=True``.
- ``caches=True``: hits modelled from repeats: an arrival whose (model, preset after routing, size,
  n, prompt, seed) came before is an exact-result hit; one whose (model, preset, prompt) came before
  reuses the text embeddings (the runner keys them on CFG and the preset's LoRA too). Arrivals without
  a seed or prompt never hit.
- ``caches=False``: no hits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from rendercost.capacity.workload import Workload
from rendercost.domain.specs import Priority


@dataclass(frozen=True)
class CacheView:
    """Per arrival (in workload order): preset run, priority, and the two cache outcomes."""

    presets: tuple[str, ...]  # preset after routing
    priorities: tuple[Priority, ...]  # planning class
    hits: tuple[bool, ...]  # answered by the exact-result cache
    embedding_hits: tuple[bool, ...]  # text embeddings reused
    source: str  # "history", "modelled from repeats" or "off"

    @property
    def result_hit_rate(self) -> float:
        return sum(self.hits) / len(self.hits) if self.hits else 0.0

    @property
    def embedding_hit_rate(self) -> float:
        return sum(self.embedding_hits) / len(self.embedding_hits) if self.embedding_hits else 0.0


def cache_view(workload: Workload, routes: Mapping[str, str], caches: bool | None) -> CacheView:
    """The workload as ``routes`` and ``caches`` would run it (see the module docstring)."""
    routed = [replace(a, preset=routes.get(a.render_class, a.preset)) for a in workload.arrivals]
    presets = tuple(a.preset for a in routed)
    priorities = tuple(a.priority for a in routed)
    if caches is None and workload.observed_cache:
        return CacheView(
            presets,
            priorities,
            tuple(a.result_hit for a in routed),
            tuple(a.embedding_hit for a in routed),
            "history",
        )
    if caches is False:
        none = tuple(False for _ in routed)
        return CacheView(presets, priorities, none, none, "off")
    seen: set[tuple[object, ...]] = set()
    prompts: set[tuple[str, str, str]] = set()
    hits: list[bool] = []
    embedding: list[bool] = []
    for arrival in routed:
        key = arrival.repeat_key
        hits.append(key is not None and key in seen)
        if key is not None:
            seen.add(key)
        prompt = (arrival.model, arrival.preset, arrival.prompt)
        embedding.append(bool(arrival.prompt) and prompt in prompts)
        prompts.add(prompt)
    return CacheView(presets, priorities, tuple(hits), tuple(embedding), "modelled from repeats")
