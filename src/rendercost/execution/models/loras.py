"""LoRAs: found by name in configured folders, loaded into a pipeline once and kept warm (LRU).

A LoRA is named by its file stem (``my-style`` for ``my-style.safetensors``), never by a path, so a
client can only reach files an operator put in a LoRA folder. Only safetensors files are found and they
are loaded with ``use_safetensors=True``: a pickled LoRA is never unpickled.

With ``merge=True`` (``speed.merge_loras``), the active set is merged into the UNet's base weights
(diffusers ``fuse_lora``) while it stays the same, so each step runs the plain layers instead of the
base layer plus PEFT's low-rank pair (the Lightning LoRA's unmerged layers were about 20% of its UNet
time on the tiny model). Switching sets unmerges, then restores every merged layer's weights from a copy
taken before its first merge: merging and subtracting again in 16 bits would drift by a rounding error
per switch, thousands of times a night. The copy costs the memory of the layers a LoRA touches.

While no LoRA is active, or the active set is merged, the UNet's PEFT layers are taken out and their
base layers put back in their place (``_detach``), so a render runs only plain modules: a loaded but
disabled adapter still wraps every layer it touches in a Python call per step, 5% of a speed render
on the tiny model. The wrappers go back in (``_attach``) before any adapter is loaded, set, merged or
deleted. Callers learn whether LoRAs shape the output from ``activate``'s answer, not by walking the
UNet for PEFT layers.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rendercost.errors import ModelLoadFailed, UnknownLora

LORA_SUFFIX = ".safetensors"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# PEFT warns on every adapter after the first; several adapters per model is what this module is for.
warnings.filterwarnings("ignore", message="Already found a `peft_config` attribute", category=UserWarning)


def find_lora(name: str, folders: Sequence[Path]) -> Path:
    """The first ``<folder>/<name>.safetensors`` in ``folders``; ``UnknownLora`` names the available ones."""
    if not _NAME_RE.match(name) or name.endswith(LORA_SUFFIX):
        raise UnknownLora(
            f"LoRA name {name!r} is not valid: use the file's name without {LORA_SUFFIX} "
            "(letters, digits, '.', '_', '-')",
            param="loras",
        )
    for folder in folders:
        candidate = folder / f"{name}{LORA_SUFFIX}"
        if candidate.is_file():
            return candidate
    available = ", ".join(list_loras(folders)) or "none"
    raise UnknownLora(f"unknown LoRA {name!r}; available: {available}", param="loras")


def list_loras(folders: Sequence[Path]) -> list[str]:
    """Every LoRA name reachable through ``folders`` (first folder wins on equal names), sorted."""
    names = {
        path.stem
        for folder in folders
        if folder.is_dir()
        for path in folder.glob(f"*{LORA_SUFFIX}")
        if _NAME_RE.match(path.stem)
    }
    return sorted(names)


def adapter_name(path: Path) -> str:
    """A PEFT adapter name for ``path``: its stem plus a hash of where it is and what version it is.

    A file replaced on disk gets a new name, so the stale adapter is never reused.
    """
    stat = path.stat()
    identity = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    return f"{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{digest}"


class WarmAdapters:
    """The LoRA adapters loaded into one pipeline, least recently used first.

    Not thread-safe on its own: call it while holding the pipeline's lock, as the runner does.
    """

    def __init__(self, pipeline: Any, capacity: int, *, merge: bool = False) -> None:
        self._pipeline = pipeline
        self._capacity = max(1, capacity)
        self._loaded: OrderedDict[str, Path] = OrderedDict()  # adapter name -> file
        self._merge = merge
        self._active: tuple[tuple[str, float], ...] | None = ()  # the set in force; None: unsettled
        self._merged: tuple[tuple[str, float], ...] = ()  # the set merged into the UNet's weights now
        self._pristine: dict[str, Any] = {}  # LoRA layer name -> its base weight before any merge
        self._detached: list[tuple[Any, str, Any]] = []  # (parent, attribute, PEFT layer) taken out

    @property
    def loaded(self) -> list[str]:
        """Adapter names currently in the pipeline, least recently used first."""
        return list(self._loaded)

    @property
    def active(self) -> list[str]:
        """Adapter names in force since the last ``activate`` (empty: the base model renders)."""
        return [name for name, _ in self._active or ()]

    @property
    def merged(self) -> bool:
        """True while the active set is merged into the UNet's base weights."""
        return bool(self._merged)

    def activate(self, loras: Sequence[tuple[Path, float]]) -> list[str]:
        """Make exactly ``loras`` (file, weight) active, loading any that are cold; [] disables LoRAs.

        Returns the active adapter names: empty exactly when no LoRA shapes the output. The same file
        twice adds its weights.
        """
        named = [(adapter_name(path), path, weight) for path, weight in loras]
        weights: dict[str, float] = {}
        for name, _, weight in named:
            weights[name] = weights.get(name, 0.0) + weight
        if tuple(weights.items()) == self._active:
            return list(weights)  # in force already
        self._attach()
        self._active = None  # until this call settles, so a failed load leaves nothing assumed
        for name, path, _ in named:
            self._ensure_loaded(name, path, keep=set(weights))
        self._unmerge()
        if weights:
            self._pipeline.enable_lora()
            self._pipeline.set_adapters(list(weights), adapter_weights=list(weights.values()))
            if self._merge:
                self._merge_active(weights)
        elif self._loaded:
            self._pipeline.disable_lora()
        self._active = tuple(weights.items())
        if not weights or self._merge:
            self._detach()
        return list(weights)

    def _merge_active(self, weights: dict[str, float]) -> None:
        for name, layer in lora_layers(self._pipeline.unet):
            if name not in self._pristine:
                self._pristine[name] = layer.get_base_layer().weight.detach().clone()
        self._pipeline.fuse_lora(components=["unet"], lora_scale=1.0, adapter_names=list(weights))
        self._merged = tuple(weights.items())

    def _unmerge(self) -> None:
        """Unmerge what is merged and put the base weights back exactly as they were."""
        if not self._merged:
            return
        self._pipeline.unfuse_lora(components=["unet"])
        for name, layer in lora_layers(self._pipeline.unet):
            pristine = self._pristine.get(name)
            if pristine is not None:
                layer.get_base_layer().weight.data.copy_(pristine)
        self._merged = ()

    def _ensure_loaded(self, name: str, path: Path, keep: set[str]) -> None:
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return
        evictable = [loaded for loaded in self._loaded if loaded not in keep]
        while len(self._loaded) >= self._capacity and evictable:
            self._unmerge()  # a merged adapter is never deleted while its weights are in the UNet
            victim = evictable.pop(0)
            self._pipeline.delete_adapters([victim])
            del self._loaded[victim]
        try:
            self._pipeline.load_lora_weights(
                str(path.parent), weight_name=path.name, adapter_name=name, use_safetensors=True
            )
        except Exception as exc:  # diffusers/PEFT raise many types for a bad file
            raise ModelLoadFailed(f"LoRA {path.stem!r} ({path}) cannot be loaded: {exc}") from exc
        self._loaded[name] = path

    def _detach(self) -> None:
        """Put each UNet PEFT layer's base layer in its place; the layers are kept to put back."""
        unet = self._pipeline.unet
        for name, layer in lora_layers(unet):
            parent_name, _, attr = name.rpartition(".")
            parent = unet.get_submodule(parent_name)
            setattr(parent, attr, layer.get_base_layer())
            self._detached.append((parent, attr, layer))

    def _attach(self) -> None:
        """Put back every PEFT layer ``_detach`` took out."""
        for parent, attr, layer in reversed(self._detached):
            setattr(parent, attr, layer)
        self._detached.clear()


def lora_layers(module: Any) -> list[tuple[str, Any]]:
    """Every PEFT adapter layer in ``module`` with its qualified name."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return [(name, layer) for name, layer in module.named_modules() if isinstance(layer, BaseTunerLayer)]
