"""The model registry: names, status, the embedded default, fingerprints, LoRAs, presets, prompts."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rendercost.errors import ModelLoadFailed, PresetUnavailable, PromptTooLong, UnknownLora, UnknownModel
from rendercost.execution.models import fingerprint as fingerprint_module
from rendercost.execution.models.registry import ModelRegistry
from rendercost.settings import ModelConfig, Settings
from tests.fixtures.models import make_tiny_settings

NOT_CACHED = "rendercost-tests/never-downloaded-model"
LONG_PROMPT = " ".join(["a cat"] * 40)  # 80 words, 80 tokens + start and end


def _model_without_manifest(tmp_path: Path, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model whose folder declares no speed LoRAs."""
    folder = tmp_path / "plain-model"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "rendercost.json").unlink()
    shutil.rmtree(folder / "loras")
    return folder


def test_names_and_status_report_loadable_and_broken_models(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = make_tiny_settings(
        tmp_path / "data",
        tiny_model_dir,
        models={
            "default": ModelConfig(source=str(tiny_model_dir)),
            "gone": ModelConfig(source=str(tmp_path / "nowhere")),
            "hub": ModelConfig(source=NOT_CACHED),
        },
    )
    registry = ModelRegistry(settings)

    statuses = {status.name: status for status in registry.status()}

    assert registry.names() == ["default", "gone", "hub"]
    assert statuses["default"].loadable
    assert not statuses["gone"].loadable and "does not exist" in statuses["gone"].reason
    assert not statuses["hub"].loadable and "not in the local Hugging Face cache" in statuses["hub"].reason


def test_embedded_default_is_built_on_first_use(tmp_path: Path, tiny_model_dir: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    registry = ModelRegistry(settings)
    [before] = registry.status()

    folder = registry.folder("default")

    assert before.loadable and "built on first use" in before.reason
    assert folder == settings.tiny_model_dir
    assert registry.fingerprint("default") == ModelRegistry(
        make_tiny_settings(tmp_path / "d2", tiny_model_dir)
    ).fingerprint("default")  # the same deterministic build


def test_unknown_model_names_the_configured_ones(tiny_settings: Settings) -> None:
    registry = ModelRegistry(tiny_settings)

    with pytest.raises(UnknownModel, match="configured models: default"):
        registry.get("sdxl-base")


def test_hub_id_outside_the_cache_fails_to_load_with_a_clear_message(tiny_settings: Settings) -> None:
    registry = ModelRegistry(tiny_settings)

    with pytest.raises(UnknownModel):
        registry.get(NOT_CACHED)  # paths and hub ids only with allow_paths (the CLI)
    with pytest.raises(ModelLoadFailed, match="loads hub models offline"):
        registry.get(NOT_CACHED, allow_paths=True)


def test_a_local_folder_loads_with_allow_paths(tiny_settings: Settings, tiny_model_dir: Path) -> None:
    registry = ModelRegistry(tiny_settings)

    model = registry.get(str(tiny_model_dir), allow_paths=True)

    assert model.device == "cpu"
    assert str(model.dtype) == "torch.float32"
    assert model is registry.get(str(tiny_model_dir), allow_paths=True)  # loaded once, kept warm
    assert dict(model.speed_loras) == {
        "extreme-speed": "tiny-lcm",
        "hyper-sd": "tiny-hyper-sd",
        "lightning": "tiny-lightning",
    }


def test_a_folder_that_is_not_a_pipeline_fails_to_load(tmp_path: Path, tiny_model_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    settings = make_tiny_settings(
        tmp_path / "data", tiny_model_dir, models={"x": ModelConfig(source=str(tmp_path / "empty"))}
    )

    with pytest.raises(ModelLoadFailed, match=r"model_index\.json"):
        ModelRegistry(settings).get("x")


def test_fingerprint_is_memoized_and_follows_the_files(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    settings = make_tiny_settings(tmp_path / "data", folder)
    first = ModelRegistry(settings).fingerprint("default")

    def no_reading(path: Path) -> str:
        raise AssertionError(f"{path} was hashed again")

    with monkeypatch.context() as patch:
        patch.setattr(fingerprint_module, "sha256_file", no_reading)
        assert ModelRegistry(settings).fingerprint("default") == first  # from the memo
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps({"changed": True}))

    assert ModelRegistry(settings).fingerprint("default") != first
    assert len(first) == 64


def test_loras_resolve_by_name_from_configured_folders_then_the_models(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    style_dir = tmp_path / "styles"
    style_dir.mkdir()
    shutil.copy(tiny_model_dir / "loras" / "tiny-lcm.safetensors", style_dir / "watercolor.safetensors")
    registry = ModelRegistry(make_tiny_settings(tmp_path / "data", tiny_model_dir, lora_dirs=[style_dir]))

    assert registry.resolve_lora("default", "watercolor") == style_dir / "watercolor.safetensors"
    assert (
        registry.resolve_lora("default", "tiny-lightning")
        == tiny_model_dir / "loras" / "tiny-lightning.safetensors"
    )
    with pytest.raises(UnknownLora, match="available: tiny-hyper-sd, tiny-lcm, tiny-lightning, watercolor"):
        registry.resolve_lora("default", "oil-paint")
    with pytest.raises(UnknownLora, match="not valid"):
        registry.resolve_lora("default", "../styles/watercolor")


def test_speed_presets_are_unavailable_without_their_lora(tmp_path: Path, tiny_model_dir: Path) -> None:
    plain = _model_without_manifest(tmp_path, tiny_model_dir)
    settings = make_tiny_settings(
        tmp_path / "data",
        tiny_model_dir,
        models={
            "default": ModelConfig(source=str(tiny_model_dir)),
            "plain": ModelConfig(source=str(plain)),
            "misconfigured": ModelConfig(source=str(plain), speed_loras={"lightning": "missing-file"}),
        },
    )
    registry = ModelRegistry(settings)

    for preset in ("quality", "speed", "extreme-speed", "lightning", "hyper-sd"):
        registry.check_preset("default", preset)
    registry.check_preset("plain", "speed")
    with pytest.raises(PresetUnavailable, match="'lightning' speed LoRA and model 'plain' has none"):
        registry.check_preset("plain", "lightning")
    with pytest.raises(PresetUnavailable, match="'missing-file'"):
        registry.check_preset("misconfigured", "lightning")


def test_prompt_longer_than_77_tokens_is_refused_or_truncated(tiny_settings: Settings) -> None:
    registry = ModelRegistry(tiny_settings)

    assert registry.count_tokens("default", "a cat") == 4
    assert registry.check_prompt("default", "a cat") == "a cat"
    with pytest.raises(PromptTooLong, match="82 tokens") as refused:
        registry.check_prompt("default", LONG_PROMPT)
    truncated = registry.check_prompt("default", LONG_PROMPT, truncate=True)

    assert refused.value.param == "prompt"
    assert registry.count_tokens("default", truncated) <= 77
    assert LONG_PROMPT.startswith(truncated)


def test_concurrent_first_use_loads_the_model_once(tiny_settings: Settings) -> None:
    registry = ModelRegistry(tiny_settings)

    with ThreadPoolExecutor(max_workers=4) as pool:
        models = list(pool.map(lambda _: registry.get("default"), range(4)))

    assert all(model is models[0] for model in models)
    assert registry.status()[0].reason == "loaded on cpu (float32)"
