"""Write the SDXL-base config folder shipped for single-file checkpoints (run once; output committed).

    PYTHONPATH=src .venv/bin/python tools/single_file_config.py BPE_VOCAB_GZ

``BPE_VOCAB_GZ`` is CLIP's BPE merges file (``bpe_simple_vocab_16e6.txt.gz``, MIT, shipped in the
``open_clip_torch`` wheel). The folder it writes, ``src/rendercost/execution/models/single_file_config/
sdxl-base``, holds what ``StableDiffusionXLPipeline.from_single_file(config=...)`` reads besides the
weights: ``model_index.json``, the scheduler, UNet, VAE and text encoder configs (from
``execution.models.sdxl_configs.SDXL_BASE``, the published stabilityai/stable-diffusion-xl-base-1.0
values) and both CLIP tokenizers (vocab.json + merges.txt built from the BPE file exactly as CLIP's own
tokenizer builds its vocabulary).
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import torch
from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig

from rendercost.execution.models.sdxl_configs import SDXL_BASE

OUT = Path(__file__).resolve().parents[1] / "src/rendercost/execution/models/single_file_config/sdxl-base"
MERGES = 49152 - 256 - 2  # CLIP keeps this many merges


def _bytes_to_unicode() -> dict[int, str]:
    visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    visible += list(range(ord("®"), ord("ÿ") + 1))
    chars = visible[:]
    extra = 0
    for byte in range(256):
        if byte not in visible:
            visible.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(visible, (chr(c) for c in chars), strict=True))


def _tokenizer_files(bpe_gz: Path, folder: Path) -> None:
    merges = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")[1 : MERGES + 1]
    pairs = [tuple(line.split()) for line in merges]
    vocab = list(_bytes_to_unicode().values())
    vocab += [token + "</w>" for token in vocab]
    vocab += ["".join(pair) for pair in pairs]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    folder.mkdir(parents=True, exist_ok=True)
    vocab_json = json.dumps({t: i for i, t in enumerate(vocab)}, ensure_ascii=False)
    (folder / "vocab.json").write_text(vocab_json, encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


def main(bpe_gz: Path) -> None:
    for sub, pad in (("tokenizer", "<|endoftext|>"), ("tokenizer_2", "!")):  # SDXL's two pad tokens
        folder = OUT / sub
        _tokenizer_files(bpe_gz, folder)  # vocab.json + merges.txt, the layout SDXL's repository ships
        config = {
            "tokenizer_class": "CLIPTokenizer",
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
            "pad_token": pad,
            "model_max_length": 77,
            "do_lower_case": True,
        }
        (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    with torch.device("meta"):
        UNet2DConditionModel(**SDXL_BASE.unet).save_config(str(OUT / "unet"))
        AutoencoderKL(**SDXL_BASE.vae).save_config(str(OUT / "vae"))
    text = {**SDXL_BASE.text_encoder, "architectures": ["CLIPTextModel"]}
    CLIPTextConfig(**text).save_pretrained(str(OUT / "text_encoder"))
    text_2 = {**SDXL_BASE.text_encoder_2, "architectures": ["CLIPTextModelWithProjection"]}
    CLIPTextConfig(**text_2).save_pretrained(str(OUT / "text_encoder_2"))
    EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
    ).save_config(str(OUT / "scheduler"))
    index = {
        "_class_name": "StableDiffusionXLPipeline",
        "force_zeros_for_empty_prompt": True,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (OUT / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
