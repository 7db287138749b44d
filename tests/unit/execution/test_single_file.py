"""Single-file checkpoints: loaded offline over a config folder, found in models/checkpoints, hashed once."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from rendercost.errors import ModelLoadFailed
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.sdxl_configs import SDXL_BASE
from rendercost.execution.models.single_file import SHIPPED_SDXL_CONFIG, file_sha256
from rendercost.settings import ModelConfig, Settings
from tests.fixtures.single_file import TinyCheckpoint

pytestmark = pytest.mark.slow


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", min_side=64, **overrides)  # type: ignore[arg-type]


def test_a_checkpoint_loads_to_the_same_weights_and_its_fingerprint_is_the_files_sha256(
    tmp_path: Path, tiny_checkpoint: TinyCheckpoint
) -> None:
    import torch
    from diffusers import StableDiffusionXLPipeline

    config = ModelConfig(source=str(tiny_checkpoint.path), config=tiny_checkpoint.config)
    registry = ModelRegistry(_settings(tmp_path, models={"tinyfile": config}))

    loaded = registry.get("tinyfile")

    source = StableDiffusionXLPipeline.from_pretrained(str(tiny_checkpoint.source), local_files_only=True)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        want, got = getattr(source, part).state_dict(), getattr(loaded.pipeline, part).state_dict()
        assert set(want) == set(got), part
        assert all(torch.equal(want[key], got[key]) for key in want), part
    assert loaded.fingerprint == _sha256(tiny_checkpoint.path)
    assert registry.count_tokens("tinyfile", "a red fox") > 2  # the config folder's tokenizers


def test_checkpoints_and_loras_are_found_under_the_models_root(
    tmp_path: Path, tiny_checkpoint: TinyCheckpoint, tiny_model_dir: Path
) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    (models / "loras").mkdir()
    shutil.copy(tiny_checkpoint.path, models / "checkpoints" / "juggernautXL_v8.safetensors")
    shutil.copy(
        tiny_model_dir / "loras" / "tiny-lightning.safetensors", models / "loras" / "film-grain.safetensors"
    )
    (models / "checkpoints" / "notes.txt").write_text("not a model")
    registry = ModelRegistry(_settings(tmp_path, models_dir=models))

    statuses = {status.name: status for status in registry.status()}

    assert registry.names() == ["default", "juggernautXL_v8"]
    assert statuses["juggernautXL_v8"].loadable
    assert "single-file checkpoint" in statuses["juggernautXL_v8"].reason
    assert (
        registry.resolve_lora("juggernautXL_v8", "film-grain") == models / "loras" / "film-grain.safetensors"
    )
    assert registry.folder("juggernautXL_v8") == SHIPPED_SDXL_CONFIG  # no config set: the shipped SDXL base


def test_a_pickle_checkpoint_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not unpickled")
    registry = ModelRegistry(_settings(tmp_path, models={"old": ModelConfig(source=str(ckpt))}))

    status = {status.name: status for status in registry.status()}["old"]

    assert not status.loadable and "pickle" in status.reason
    with pytest.raises(ModelLoadFailed, match="safetensors"):
        registry.get("old")


def test_the_file_hash_is_memoized_by_path_size_and_mtime(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"weights v1")
    memo_dir = tmp_path / "memo"
    real = file_sha256(weights, memo_dir)
    assert real == _sha256(weights)
    (memo,) = memo_dir.iterdir()
    saved = json.loads(memo.read_text())
    memo.write_text(json.dumps({**saved, "sha256": "f" * 64}))

    assert file_sha256(weights, memo_dir) == "f" * 64  # same path, size and mtime: the memo answers

    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert file_sha256(weights, memo_dir) == real  # touched: hashed again


def test_the_shipped_sdxl_config_is_sdxl_base_with_clips_tokenizers() -> None:
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTokenizer

    unet = UNet2DConditionModel.load_config(str(SHIPPED_SDXL_CONFIG / "unet"))
    vae = AutoencoderKL.load_config(str(SHIPPED_SDXL_CONFIG / "vae"))
    assert {key: unet[key] for key in SDXL_BASE.unet} == {
        key: list(value) if isinstance(value, tuple | list) else value
        for key, value in SDXL_BASE.unet.items()
    }
    assert (vae["scaling_factor"], vae["latent_channels"]) == (0.13025, 4)
    text = CLIPTextConfig.from_pretrained(str(SHIPPED_SDXL_CONFIG / "text_encoder"))
    text_2 = CLIPTextConfig.from_pretrained(str(SHIPPED_SDXL_CONFIG / "text_encoder_2"))
    assert (text.hidden_size, text_2.hidden_size, text_2.projection_dim) == (768, 1280, 1280)
    for sub in ("tokenizer", "tokenizer_2"):
        tokenizer = CLIPTokenizer.from_pretrained(str(SHIPPED_SDXL_CONFIG / sub), local_files_only=True)
        assert len(tokenizer) == 49408
        # CLIP ViT-L/14's ids for this text (start, a, photo, of, a, cat, end)
        assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_a_checkpoint_in_sdxl_bases_layout_converts_exactly_onto_the_shipped_config() -> None:
    """Shapes only (meta tensors, no 7 GB of weights): every tensor of an SDXL-base single file, in the
    layout its keys have, lands on the shipped config's modules with the shape they expect."""
    from types import SimpleNamespace

    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from diffusers.loaders import single_file_utils as sfu
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from tests.fixtures.single_file import checkpoint_tensors

    config = SHIPPED_SDXL_CONFIG
    with torch.device("meta"):
        models = SimpleNamespace(
            unet=UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(config / "unet"))),
            vae=AutoencoderKL.from_config(AutoencoderKL.load_config(str(config / "vae"))),
            text_encoder=CLIPTextModel(CLIPTextConfig.from_pretrained(str(config / "text_encoder"))),
            text_encoder_2=CLIPTextModelWithProjection(
                CLIPTextConfig.from_pretrained(str(config / "text_encoder_2"))
            ),
        )
    ldm = checkpoint_tensors(models)

    def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
        return {key: tuple(value.shape) for key, value in state.items()}

    assert sfu.infer_diffusers_model_type(ldm) == "xl_base"  # diffusers reads it as SDXL base
    assert shapes(sfu.convert_ldm_unet_checkpoint(ldm, models.unet.config)) == shapes(
        models.unet.state_dict()
    )
    assert shapes(sfu.convert_ldm_vae_checkpoint(ldm, models.vae.config)) == shapes(models.vae.state_dict())
    clip_l = {key.removeprefix("text_model."): v for key, v in sfu.convert_ldm_clip_checkpoint(ldm).items()}
    text = models.text_encoder.state_dict()
    assert shapes(clip_l) == shapes({key.removeprefix("text_model."): v for key, v in text.items()})
    clip_g = sfu.convert_open_clip_checkpoint(
        models.text_encoder_2, ldm, prefix="conditioner.embedders.1.model."
    )
    assert shapes(clip_g) == shapes(models.text_encoder_2.state_dict())
    parameters = sum(value.numel() for value in ldm.values())
    assert 3.4e9 < parameters < 3.6e9  # SDXL base: 2.57 B UNet + 0.82 B text + 0.08 B VAE
