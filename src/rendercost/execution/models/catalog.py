"""The two ``admission.catalog.ModelCatalog`` implementations: from settings and model folders
(``SettingsModelCatalog``, loads nothing) and from the model registry (``RegistryCatalog``, what the
runner will really find)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

from rendercost.domain.presets import get_preset
from rendercost.errors import ModelLoadFailed, PresetUnavailable, UnknownLora
from rendercost.execution.models import single_file
from rendercost.execution.models.manifest import MODEL_LORA_DIR, read_speed_loras
from rendercost.settings import DEFAULT_MODEL_NAME, Settings

if TYPE_CHECKING:  # the registry imports torch; a settings catalog needs none of it
    from rendercost.execution.models.registry import ModelRegistry


class SettingsModelCatalog:
    """A ``ModelCatalog`` read from settings and model folders, without loading anything: names are
    ``settings.models`` plus the default model; a model's speed LoRAs are its ``speed_loras`` setting
    over its folder's ``rendercost.json`` manifest; LoRAs are looked up in the configured folders."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def names(self) -> Collection[str]:
        return {*single_file.with_discovered(self.settings), self.settings.default_model}

    def _model_dir(self, model: str) -> Path | None:
        config = single_file.with_discovered(self.settings).get(model)
        if config is not None and single_file.is_single_file(config.source):
            return None  # a checkpoint file: no folder of its own (LoRAs come from the LoRA folders)
        if config is not None:
            folder = Path(config.source).expanduser()
            return folder if folder.is_dir() else None
        return self.settings.tiny_model_dir if model == DEFAULT_MODEL_NAME else None

    def speed_loras(self, model: str) -> dict[str, str]:
        folder = self._model_dir(model)
        loras = read_speed_loras(folder) if folder is not None else {}
        config = self.settings.models.get(model)
        return {**loras, **(config.speed_loras if config is not None else {})}

    def preset_available(self, model: str, preset: str) -> bool:
        role = get_preset(preset).speed_lora
        return role is None or role in self.speed_loras(model)

    def lora_exists(self, model: str, name: str) -> bool:
        folders = list(self.settings.resolved_lora_dirs)
        model_dir = self._model_dir(model)
        if model_dir is not None:
            folders.append(model_dir / MODEL_LORA_DIR)
        return any((Path(d) / f"{name}.safetensors").is_file() for d in folders)

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        """No tokenizer here: prompts are checked by the runner."""


class RegistryCatalog:
    """A ``ModelCatalog`` answered by the model registry (what the runner will really find)."""

    def __init__(self, registry: ModelRegistry, default_model: str) -> None:
        self.registry = registry
        self.default_model = default_model

    def names(self) -> Collection[str]:
        return self.registry.names()

    def preset_available(self, model: str, preset: str) -> bool:
        try:
            self.registry.check_preset(model, preset)
        except PresetUnavailable:
            return False
        return True

    def lora_exists(self, model: str, name: str) -> bool:
        try:
            self.registry.resolve_lora(model, name)
        except UnknownLora:
            return False
        return True

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        self.registry.check_prompt(model, prompt, param=param)

    def check_default_model(self) -> None:
        """Readiness: the default model's files can be found (or the tiny model can be built)."""
        for status in self.registry.status():
            if status.name == self.default_model and not status.loadable:
                raise ModelLoadFailed(f"model {status.name!r}: {status.reason}")
