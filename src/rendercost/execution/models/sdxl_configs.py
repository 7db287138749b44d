"""The SDXL-base architecture as plain config dicts, and a builder for a random-weight pipeline.

``SDXL_BASE`` holds the published configs of ``stabilityai/stable-diffusion-xl-base-1.0`` (UNet,
CLIP ViT-L text encoder, OpenCLIP ViT-bigG text encoder, VAE): the GPU benchmark builds it with random
weights so it can measure the real architecture's cost without downloading weights. ``SDXL_TINY`` keeps
the same structure (three UNet levels, a transformer-free first level, deeper transformers lower down,
two text encoders whose hidden sizes add up to the cross-attention width, a 4-level VAE so latents are
1/8 of the image) at a size a CPU runs in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# stabilityai/stable-diffusion-xl-base-1.0, unet/config.json (2.57 B parameters)
_SDXL_UNET: dict[str, Any] = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": [5, 10, 20],  # diffusers' name for the head COUNT per level (64-dim heads)
    "block_out_channels": [320, 640, 1280],
    "cross_attention_dim": 2048,  # 768 (CLIP-L) + 1280 (bigG) hidden states, concatenated
    "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "norm_eps": 1e-05,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,  # 1280 pooled text + 6 time ids x 256
    "sample_size": 128,
    "transformer_layers_per_block": [1, 2, 10],
    "up_block_types": ["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    "use_linear_projection": True,
}

# text_encoder/config.json: CLIP ViT-L/14 text tower
_SDXL_TEXT_ENCODER: dict[str, Any] = {
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "max_position_embeddings": 77,
    "vocab_size": 49408,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
}

# text_encoder_2/config.json: OpenCLIP ViT-bigG/14 text tower, with projection
_SDXL_TEXT_ENCODER_2: dict[str, Any] = {
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_hidden_layers": 32,
    "num_attention_heads": 20,
    "max_position_embeddings": 77,
    "vocab_size": 49408,
    "hidden_act": "gelu",
    "projection_dim": 1280,
}

# vae/config.json
_SDXL_VAE: dict[str, Any] = {
    "act_fn": "silu",
    "block_out_channels": [128, 256, 512, 512],
    "down_block_types": ["DownEncoderBlock2D"] * 4,
    "up_block_types": ["UpDecoderBlock2D"] * 4,
    "force_upcast": True,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 1024,  # also the VAE's tile size when tiling is on
    "scaling_factor": 0.13025,
}


@dataclass(frozen=True)
class SdxlConfigs:
    """Configs of the four models of an SDXL pipeline, as keyword arguments of their constructors."""

    name: str  # "sdxl-base" or "sdxl-tiny"
    unet: dict[str, Any]  # UNet2DConditionModel(**unet)
    text_encoder: dict[str, Any]  # CLIPTextConfig(**text_encoder) for CLIPTextModel
    text_encoder_2: dict[str, Any]  # CLIPTextConfig(**text_encoder_2) for CLIPTextModelWithProjection
    vae: dict[str, Any]  # AutoencoderKL(**vae)
    native_side: int  # the image side the model was trained at (pixels)


SDXL_BASE = SdxlConfigs(
    "sdxl-base", _SDXL_UNET, _SDXL_TEXT_ENCODER, _SDXL_TEXT_ENCODER_2, _SDXL_VAE, native_side=1024
)

SDXL_TINY = SdxlConfigs(
    name="sdxl-tiny",
    unet={
        **_SDXL_UNET,
        "attention_head_dim": [1, 2, 4],  # 16-dim heads
        "block_out_channels": [16, 32, 64],
        "cross_attention_dim": 32,  # 16 + 16
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 64,  # 16 pooled + 6 x 8
        "norm_num_groups": 8,
        "layers_per_block": 1,
        "sample_size": 8,
        "transformer_layers_per_block": [1, 1, 2],
    },
    text_encoder={
        **_SDXL_TEXT_ENCODER,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 1000,
        "projection_dim": 16,
    },
    text_encoder_2={
        **_SDXL_TEXT_ENCODER_2,
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 1000,
        "projection_dim": 16,
    },
    vae={
        **_SDXL_VAE,
        "block_out_channels": [8, 8, 16, 16],
        "norm_num_groups": 4,
        "layers_per_block": 1,
        "sample_size": 64,  # tiles of 64 px: a 128 px image decodes in 3 x 3 tiles
    },
    native_side=64,
)


def build_random_pipeline(configs: SdxlConfigs, device: str, dtype: Any, seed: int = 0) -> Any:
    """A ``StableDiffusionXLPipeline`` with random weights on ``device`` in ``dtype``.

    Modules are constructed directly on the device (no host round trip for 3.5 B parameters). The
    pipeline has no tokenizers: callers pass token ids or embeddings. The noise scheduler is Euler;
    callers swap it for the one their preset uses.
    """
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import (
        StableDiffusionXLPipeline,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel(**configs.unet)
        vae = AutoencoderKL(**configs.vae)
        text_encoder = CLIPTextModel(CLIPTextConfig(**configs.text_encoder))
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**configs.text_encoder_2))
    for module in (unet, vae, text_encoder, text_encoder_2):
        module.to(dtype=dtype).eval().requires_grad_(False)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading"
    )
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=None,
        tokenizer_2=None,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
