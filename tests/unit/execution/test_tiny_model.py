"""The tiny model: SDXL's structure, deterministic bytes, an all-or-nothing build, a usable tokenizer."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from diffusers import StableDiffusionXLPipeline

from rendercost.errors import InvalidRequest
from rendercost.execution.models.tiny_model import TINY_SPEED_LORAS, build_tiny_model
from rendercost.execution.models.tiny_tokenizer import build_tiny_tokenizer, learn_merges


def _hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_folder_loads_as_an_sdxl_pipeline(tiny_model_dir: Path) -> None:
    pipeline = StableDiffusionXLPipeline.from_pretrained(str(tiny_model_dir), local_files_only=True)

    assert pipeline.unet.config.addition_embed_type == "text_time"
    assert pipeline.unet.config.cross_attention_dim == (
        pipeline.text_encoder.config.hidden_size + pipeline.text_encoder_2.config.hidden_size
    )
    assert pipeline.vae_scale_factor == 8
    assert type(pipeline.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
    assert pipeline.tokenizer.model_max_length == 77
    assert pipeline.tokenizer_2.model_max_length == 77
    assert pipeline.default_sample_size * pipeline.vae_scale_factor == 1024


def test_speed_loras_and_manifest_are_written(tiny_model_dir: Path) -> None:
    manifest = json.loads((tiny_model_dir / "rendercost.json").read_text())

    assert manifest == {"speed_loras": TINY_SPEED_LORAS}
    for name in TINY_SPEED_LORAS.values():
        assert (tiny_model_dir / "loras" / f"{name}.safetensors").stat().st_size > 0


def test_building_twice_gives_identical_files(tmp_path: Path, tiny_model_dir: Path) -> None:
    build_tiny_model(tmp_path / "again")

    assert _hashes(tmp_path / "again") == _hashes(tiny_model_dir)


def test_a_non_empty_target_is_refused_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.mkdir()
    (target / "notes.txt").write_text("mine")

    with pytest.raises(InvalidRequest, match="not empty"):
        build_tiny_model(target)

    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]  # no staging folder left behind


def test_tokenizer_reads_common_words_as_one_token_and_anything_else_without_unknowns() -> None:
    tokenizer = build_tiny_tokenizer()

    common = tokenizer("a photo of a cat, cinematic lighting").input_ids
    odd = tokenizer("zqxj ünïcödé 🦊").input_ids

    assert len(common) == 2 + 8  # start, 8 words/commas, end
    assert tokenizer.unk_token_id not in odd[1:-1]
    assert learn_merges(["banana", "bandana"]) == learn_merges(["banana", "bandana"])
