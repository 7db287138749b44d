"""The model registry: configured models by name, each loaded once and kept warm.

Names come from ``settings.models``; when none is called ``settings.default_model`` ("default"), that name
is the embedded tiny model at ``settings.tiny_model_dir``, built on first use. Everything a request names
(model, preset, LoRAs, prompt length) is checked here against what the model really has, before any
device work. Thread-safe: each model loads at most once, even when many threads ask at once.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionXLPipeline
from diffusers.utils import logging as diffusers_logging
from transformers import CLIPTokenizer
from transformers.utils import logging as transformers_logging

from rendercost.domain.presets import Preset, get_preset
from rendercost.errors import ModelLoadFailed, PresetUnavailable, PromptTooLong, UnknownLora, UnknownModel
from rendercost.execution.models import single_file
from rendercost.execution.models.fingerprint import fingerprint_folder
from rendercost.execution.models.loras import WarmAdapters, find_lora
from rendercost.execution.models.manifest import MODEL_LORA_DIR, read_speed_loras
from rendercost.execution.models.sources import MODEL_INDEX, is_hub_id, resolve_source
from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.execution.pipeline import speedups
from rendercost.settings import ModelConfig, Settings

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
# Weight files that torch reads with pickle (which runs code); a model folder is loaded from safetensors.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"})


@dataclass(frozen=True)
class LoadedModel:
    """A warm pipeline and what is known about it. The pipeline is shared: hold ``lock`` to use it."""

    name: str  # configured name (or the path/hub id given with allow_paths)
    folder: Path  # where its files are
    pipeline: Any  # diffusers StableDiffusionXLPipeline, on ``device``
    device: str  # torch device it runs on, e.g. "cpu", "cuda:0"
    dtype: torch.dtype  # weights' dtype
    fingerprint: str  # SHA-256 over the folder's files; cache keys include it
    speed_loras: Mapping[str, str]  # preset name -> LoRA name (manifest, then config)
    base_scheduler_config: Mapping[str, Any]  # the model's own noise scheduler config
    adapters: WarmAdapters = field(compare=False)  # LoRA adapters kept loaded (LRU); use under ``lock``
    lock: threading.Lock = field(default_factory=threading.Lock, compare=False)  # one call at a time


@dataclass(frozen=True)
class ModelStatus:
    """One line of ``rendercost models list``."""

    name: str  # configured name
    source: str  # folder or hub id as configured
    loadable: bool  # False when its files cannot be found
    reason: str  # why not, or what it is ("loaded on cpu", "built on first use", ...)


class ModelRegistry:
    """Configured models by name: resolve, check, load once, keep warm."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._configs: dict[str, ModelConfig] = single_file.with_discovered(settings)
        self._embedded: str | None = None
        if settings.default_model not in self._configs:
            self._embedded = settings.default_model
            self._configs[settings.default_model] = ModelConfig(source=str(settings.tiny_model_dir))
        self._lock = threading.Lock()  # guards the dicts below
        self._build_lock = threading.Lock()  # one tiny-model build at a time
        self._load_locks: dict[str, threading.Lock] = {}
        self._loaded: dict[str, LoadedModel] = {}
        self._folders: dict[str, Path] = {}
        self._fingerprints: dict[str, str] = {}
        self._tokenizers: dict[str, tuple[Any, ...]] = {}
        self._tokenizer_lock = threading.Lock()  # a Rust tokenizer must not be used by two threads at once

    @property
    def settings(self) -> Settings:
        """The settings this registry was built with."""
        return self._settings

    # -- names and status ---------------------------------------------------------------------------

    def names(self) -> list[str]:
        """Configured model names, the embedded default included, sorted."""
        return sorted(self._configs)

    def status(self) -> list[ModelStatus]:
        """Whether each configured model can load, without loading (or building) any."""
        return [self._status(name) for name in self.names()]

    def _status(self, name: str) -> ModelStatus:
        config = self._configs[name]
        source = config.source
        with self._lock:
            loaded = self._loaded.get(name)
        if loaded is not None:
            return ModelStatus(name, source, True, f"loaded on {loaded.device} ({_dtype_name(loaded.dtype)})")
        if single_file.is_single_file(source):
            try:
                path = single_file.checkpoint_file(name, source)
                single_file.config_folder(name, config.config)
            except ModelLoadFailed as exc:
                return ModelStatus(name, source, False, exc.message)
            return ModelStatus(name, source, True, f"single-file checkpoint ({path})")
        if name == self._embedded and not (Path(source) / MODEL_INDEX).is_file():
            return ModelStatus(name, source, True, "embedded tiny model, built on first use")
        try:
            folder = resolve_source(source)
            refuse_pickle_weights(name, folder)
        except ModelLoadFailed as exc:
            return ModelStatus(name, source, False, exc.message)
        kind = "embedded tiny model" if name == self._embedded else "ready"
        return ModelStatus(name, source, True, f"{kind} ({folder})")

    # -- loading -----------------------------------------------------------------------------------

    def get(self, name: str, *, allow_paths: bool = False) -> LoadedModel:
        """The warm model called ``name``, loading it on first use.

        ``allow_paths`` (the CLI only) also accepts a local diffusers folder or a cached hub id.
        Raises ``UnknownModel`` or ``ModelLoadFailed``.
        """
        config = self._config(name, allow_paths)
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:
            with self._lock:
                if name in self._loaded:
                    return self._loaded[name]
            model = self._load(name, config)
            with self._lock:
                self._loaded[name] = model
            return model

    def _config(self, name: str, allow_paths: bool) -> ModelConfig:
        config = self._configs.get(name)
        if config is not None:
            return config
        path = Path(name).expanduser()
        if allow_paths and (
            is_hub_id(name) or path.is_dir() or (path.is_file() and single_file.is_single_file(name))
        ):
            return ModelConfig(source=name)
        configured = ", ".join(self.names())
        raise UnknownModel(f"unknown model {name!r}; configured models: {configured}", param="model")

    def folder(self, name: str, *, allow_paths: bool = False) -> Path:
        """Where ``name``'s files are (building the embedded tiny model if it is not there yet)."""
        config = self._config(name, allow_paths)
        with self._lock:
            if name in self._folders:
                return self._folders[name]
        if name == self._embedded:
            self._ensure_tiny_model(Path(config.source))
        if single_file.is_single_file(config.source):  # its configs and tokenizers
            single_file.checkpoint_file(name, config.source)
            folder = single_file.config_folder(name, config.config)
        else:
            folder = resolve_source(config.source)
        with self._lock:
            self._folders[name] = folder
        return folder

    def _ensure_tiny_model(self, folder: Path) -> None:
        if (folder / MODEL_INDEX).is_file():
            return
        with self._build_lock:  # one build per process; build_tiny_model also survives a racing process
            if not (folder / MODEL_INDEX).is_file():
                try:
                    build_tiny_model(folder)
                except OSError as exc:
                    raise ModelLoadFailed(f"cannot build the embedded tiny model in {folder}: {exc}") from exc

    def _load(self, name: str, config: ModelConfig) -> LoadedModel:
        folder = self.folder(name, allow_paths=True)
        refuse_pickle_weights(name, folder)
        if self._settings.torch_threads:
            torch.set_num_threads(self._settings.torch_threads)
        device = _resolve_device(config.device, self._settings.device)
        dtype = _resolve_dtype(config.dtype, device)
        checkpoint = (
            single_file.checkpoint_file(name, config.source)
            if single_file.is_single_file(config.source)
            else None
        )
        pipeline = _load_pipeline(name, folder, dtype, device, checkpoint)
        speedups.apply_speedups(pipeline, self._settings.speed, device)
        return LoadedModel(
            name=name,
            folder=folder,
            pipeline=pipeline,
            device=str(pipeline.device),
            dtype=dtype,
            fingerprint=self.fingerprint(name, allow_paths=True),
            speed_loras=self.speed_loras(name, allow_paths=True),
            base_scheduler_config=dict(pipeline.scheduler.config),
            adapters=WarmAdapters(
                pipeline, self._settings.warm_loras, merge=self._settings.speed.merge_loras
            ),
        )

    # -- facts about a model (no pipeline needed) --------------------------------------------------

    def fingerprint(self, name: str, *, allow_paths: bool = False) -> str:
        """SHA-256 over the model folder's files (speed LoRAs and manifest included), or of a single-file
        checkpoint's bytes; memoized."""
        with self._lock:
            if name in self._fingerprints:
                return self._fingerprints[name]
        folder = self.folder(name, allow_paths=allow_paths)
        memo_dir = self._settings.data_dir / "cache" / "fingerprints"
        source = self._config(name, allow_paths).source
        if single_file.is_single_file(source):
            value = single_file.file_sha256(single_file.checkpoint_file(name, source), memo_dir)
        else:
            value = fingerprint_folder(folder, memo_dir)
        with self._lock:
            self._fingerprints[name] = value
        return value

    def speed_loras(self, name: str, *, allow_paths: bool = False) -> dict[str, str]:
        """Preset name -> speed LoRA name: the folder's manifest, overridden by the model's config."""
        config = self._config(name, allow_paths)
        return {**read_speed_loras(self.folder(name, allow_paths=allow_paths)), **config.speed_loras}

    def lora_folders(self, name: str) -> list[Path]:
        """Where ``name``'s LoRAs are looked up, in order: configured folders, then the model's own."""
        return [*self._settings.resolved_lora_dirs, self.folder(name, allow_paths=True) / MODEL_LORA_DIR]

    def resolve_lora(self, model: str, name: str) -> Path:
        """The file of the LoRA called ``name`` for ``model``; raises ``UnknownLora``."""
        return find_lora(name, self.lora_folders(model))

    def check_preset(self, model: str, preset: Preset | str) -> None:
        """Raise ``PresetUnavailable`` when ``preset`` needs a speed LoRA that ``model`` does not have."""
        preset = get_preset(preset) if isinstance(preset, str) else preset
        if preset.speed_lora is None:
            return
        lora = self.speed_loras(model, allow_paths=True).get(preset.speed_lora)
        if lora is None:
            raise PresetUnavailable(
                f"preset {preset.name!r} needs a {preset.speed_lora!r} speed LoRA and model {model!r} has "
                f"none; set models.{model}.speed_loras.{preset.speed_lora} to a LoRA name",
                param="preset",
            )
        try:
            self.resolve_lora(model, lora)
        except UnknownLora as exc:
            raise PresetUnavailable(
                f"preset {preset.name!r} needs speed LoRA {lora!r} for model {model!r}, which is missing: "
                f"{exc.message}",
                param="preset",
            ) from exc

    # -- prompts -----------------------------------------------------------------------------------

    def token_limit(self, model: str) -> int:
        """The most tokens (start and end included) a prompt may take for ``model``."""
        limits = [int(tokenizer.model_max_length) for tokenizer in self._model_tokenizers(model)]
        return min([self._settings.max_prompt_tokens, *limits])

    def count_tokens(self, model: str, text: str) -> int:
        """Tokens ``text`` takes in ``model``'s text encoders (start and end included; the larger count)."""
        tokenizers = self._model_tokenizers(model)
        with self._tokenizer_lock:
            return max(len(tokenizer(text).input_ids) for tokenizer in tokenizers)

    def check_prompt(self, model: str, prompt: str, truncate: bool = False, *, param: str = "prompt") -> str:
        """``prompt`` if it fits ``model``; else raise ``PromptTooLong``, or with ``truncate`` cut it to fit.

        A truncated prompt comes back as the tokenizer reads it (lower case, normalized spaces).
        """
        limit = self.token_limit(model)
        count = self.count_tokens(model, prompt)
        if count <= limit:
            return prompt
        if not truncate:
            raise PromptTooLong(
                f"{param} is {count} tokens and model {model!r} reads at most {limit} "
                "(start and end tokens included); shorten it or ask for truncation",
                param=param,
            )
        tokenizer = self._model_tokenizers(model)[0]
        with self._tokenizer_lock:
            ids = tokenizer(prompt, truncation=True, max_length=limit).input_ids
            words = str(tokenizer.decode(ids, skip_special_tokens=True)).split()
        while words and self.count_tokens(model, " ".join(words)) > limit:
            words.pop()  # re-tokenizing decoded text can merge differently; drop words until it fits
        return " ".join(words)

    def _model_tokenizers(self, model: str) -> tuple[Any, ...]:
        """The model's two tokenizers: own copies, never the pipeline's, which its call may be using."""
        with self._lock:
            if model in self._tokenizers:
                return self._tokenizers[model]
        folder = self.folder(model, allow_paths=True)
        tokenizers = tuple(_load_tokenizer(folder, sub) for sub in ("tokenizer", "tokenizer_2"))
        with self._lock:
            self._tokenizers[model] = tokenizers
        return tokenizers


def refuse_pickle_weights(name: str, folder: Path) -> None:
    """Raise ``ModelLoadFailed`` naming the file when a folder of ``folder`` (itself included) holds
    pickle weights and no safetensors: loading them would run the pickle."""
    for directory in sorted({folder, *(p.parent for p in folder.rglob("*") if p.is_file())}):
        files = [p for p in directory.iterdir() if p.is_file()]
        pickled = sorted(p for p in files if p.suffix in PICKLE_SUFFIXES)
        if pickled and not any(p.suffix == ".safetensors" for p in files):
            raise ModelLoadFailed(
                f"model {name!r}: {pickled[0]} is a pickle weight file (code runs when it is read) and "
                f"{directory} has no .safetensors; convert it to safetensors (safetensors.torch.save_file)"
            )


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _resolve_device(model_device: str, default_device: str) -> str:
    device = default_device if model_device == "auto" else model_device
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadFailed(f"device {device!r} asked for, but CUDA is not available here")
    return device


def _resolve_dtype(dtype: str, device: str) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return _DTYPES[dtype]


def _load_pipeline(name: str, folder: Path, dtype: torch.dtype, device: str, checkpoint: Path | None) -> Any:
    """The pipeline from a diffusers folder, or from ``checkpoint`` over the config ``folder``."""
    diffusers_logging.disable_progress_bar()  # a server's log is no place for progress bars
    transformers_logging.disable_progress_bar()
    try:
        if checkpoint is not None:
            pipeline = single_file.load_pipeline(checkpoint, folder, dtype, {"add_watermarker": False})
        else:
            pipeline = StableDiffusionXLPipeline.from_pretrained(
                str(folder), dtype=dtype, local_files_only=True, add_watermarker=False, use_safetensors=True
            )
        pipeline.to(device)
    except Exception as exc:  # diffusers/transformers/torch raise many types for unreadable weights
        raise ModelLoadFailed(f"model {name!r} ({checkpoint or folder}) cannot be loaded: {exc}") from exc
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _load_tokenizer(folder: Path, subfolder: str) -> Any:
    try:
        return CLIPTokenizer.from_pretrained(str(folder / subfolder), local_files_only=True)
    except Exception as exc:  # transformers raises OSError/ValueError/... for a bad folder
        raise ModelLoadFailed(f"tokenizer {folder / subfolder} cannot be loaded: {exc}") from exc
