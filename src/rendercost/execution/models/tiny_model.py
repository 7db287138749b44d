"""The embedded default model: a tiny SDXL-shaped diffusers folder with random weights, built offline.

``build_tiny_model(path)`` writes a folder that ``StableDiffusionXLPipeline.from_pretrained`` loads: two
CLIP text encoders (the second with a projection), a UNet with SDXL's ``text_time`` conditioning, a VAE
with 8x downsampling, the tokenizers (``tiny_tokenizer``), an Euler noise scheduler config, and three
tiny speed LoRAs in ``loras/`` named by the ``rendercost.json`` manifest, so every preset runs end to end.
Images are noise, but every stage does real work of the right shape. Same seed, same bytes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection
from transformers.utils import logging as transformers_logging

from rendercost.errors import InvalidRequest
from rendercost.execution.models.manifest import MODEL_LORA_DIR, write_manifest
from rendercost.execution.models.tiny_tokenizer import MODEL_MAX_LENGTH, build_tiny_tokenizer

TEXT_HIDDEN = 32  # width of each text encoder; the UNet's cross-attention sees both (2 x 32)
TIME_EMBED = 8  # SDXL's addition_time_embed_dim, scaled down (SDXL: 256)
LORA_RANK = 4
LORA_B_SCALE = 0.02  # small, nonzero: a LoRA visibly changes the output without blowing it up

# role (= preset name) -> LoRA file stem written into loras/
TINY_SPEED_LORAS: dict[str, str] = {
    "extreme-speed": "tiny-lcm",
    "lightning": "tiny-lightning",
    "hyper-sd": "tiny-hyper-sd",
}
_LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # attention projections, as real speed LoRAs


def _text_encoder_config(vocab_size: int) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=TEXT_HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,  # SDXL reads the penultimate layer
        num_attention_heads=4,
        max_position_embeddings=MODEL_MAX_LENGTH,
        projection_dim=TEXT_HIDDEN,
        hidden_act="gelu",
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
    )


def _unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=128,  # latent side for 1024 px, so the pipeline's default size is SDXL's
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=2,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        transformer_layers_per_block=(1, 1),
        cross_attention_dim=2 * TEXT_HIDDEN,
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED,
        projection_class_embeddings_input_dim=6 * TIME_EMBED + TEXT_HIDDEN,  # 6 time ids + pooled text
        norm_num_groups=16,
    )


def _vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(8, 8, 16, 16),  # four blocks: 8x downsampling, like SDXL's VAE
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=1024,
        scaling_factor=0.13025,  # SDXL's
        force_upcast=True,
    )


def _noise_scheduler() -> EulerDiscreteScheduler:
    """SDXL's shipped scheduler config; presets swap in their own sampler built from it."""
    return EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )


def _build_pipeline(seed: int) -> StableDiffusionXLPipeline:
    tokenizer = build_tiny_tokenizer()
    config = _text_encoder_config(len(tokenizer))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(config)
    torch.manual_seed(seed + 1)
    text_encoder_2 = CLIPTextModelWithProjection(config)
    torch.manual_seed(seed + 2)
    unet = _unet()
    torch.manual_seed(seed + 3)
    vae = _vae()
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=build_tiny_tokenizer(),
        unet=unet,
        scheduler=_noise_scheduler(),
        add_watermarker=False,
    )


def _lora_state_dict(unet: UNet2DConditionModel, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """PEFT-style ``lora_A``/``lora_B`` weights for every attention projection of ``unet``."""
    state: dict[str, torch.Tensor] = {}
    for name, module in unet.named_modules():
        if not (isinstance(module, torch.nn.Linear) and name.endswith(_LORA_TARGETS)):
            continue
        down = torch.randn(LORA_RANK, module.in_features, generator=generator) / module.in_features**0.5
        up = torch.randn(module.out_features, LORA_RANK, generator=generator) * LORA_B_SCALE
        state[f"{name}.lora_A.weight"] = down.contiguous()
        state[f"{name}.lora_B.weight"] = up.contiguous()
    return state


def _write_speed_loras(pipeline: StableDiffusionXLPipeline, model_dir: Path, seed: int) -> None:
    lora_dir = model_dir / MODEL_LORA_DIR
    lora_dir.mkdir()
    for index, lora_name in enumerate(sorted(TINY_SPEED_LORAS.values())):
        generator = torch.Generator().manual_seed(seed * 1000 + 100 + index)
        StableDiffusionXLPipeline.save_lora_weights(
            save_directory=str(lora_dir),
            unet_lora_layers=_lora_state_dict(pipeline.unet, generator),
            weight_name=f"{lora_name}.safetensors",
        )
    write_manifest(model_dir, dict(TINY_SPEED_LORAS))


def build_tiny_model(path: Path, seed: int = 0) -> None:
    """Write the tiny SDXL model (weights, tokenizers, speed LoRAs, manifest) into ``path``.

    The folder appears whole or not at all: it is built beside ``path`` and renamed into place. ``path``
    must not exist or be an empty folder; if another process finishes the same build first, its folder is
    kept (the build is deterministic, so both are the same). Raises ``InvalidRequest`` when ``path``
    already holds something else.
    """
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidRequest(f"{path} already exists and is not empty; remove it first", param="path")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    transformers_logging.disable_progress_bar()  # "Writing model shards" bars, for files this small
    try:
        with torch.random.fork_rng(devices=[]):  # leave the caller's global RNG untouched
            pipeline = _build_pipeline(seed)
            pipeline.save_pretrained(str(staging), safe_serialization=True)
            _write_speed_loras(pipeline, staging, seed)
        staging.chmod(0o755)  # mkdtemp makes it private; a model folder is ordinary
        try:
            os.replace(staging, path)
        except OSError:
            if not (path / "model_index.json").is_file():
                raise  # not a concurrent build of the same model: a real failure
    finally:
        shutil.rmtree(staging, ignore_errors=True)
