"""``rendercost.json``: what a model folder tells rendercost about itself (its speed LoRAs).

A model folder may hold a ``loras/`` directory and a manifest mapping preset names to LoRA names
(file stems in that directory or in the configured LoRA folders)::

    {"speed_loras": {"lightning": "tiny-lightning", "hyper-sd": "tiny-hyper-sd"}}

A model's ``ModelConfig.speed_loras`` entries win over the manifest's.
"""

from __future__ import annotations

import json
from pathlib import Path

from rendercost.errors import ModelLoadFailed

MANIFEST_NAME = "rendercost.json"
MODEL_LORA_DIR = "loras"  # a model folder's own LoRAs, searched after the configured folders


def read_speed_loras(model_dir: Path) -> dict[str, str]:
    """Preset name -> LoRA name from the folder's manifest; empty when there is none."""
    path = model_dir / MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        loras = data.get("speed_loras", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelLoadFailed(f"{path} is not a valid rendercost manifest: {exc}") from exc
    if not isinstance(loras, dict) or not all(isinstance(v, str) for v in loras.values()):
        raise ModelLoadFailed(f"{path}: speed_loras must map preset names to LoRA names")
    return {str(k): v for k, v in loras.items()}


def write_manifest(model_dir: Path, speed_loras: dict[str, str]) -> None:
    """Write the manifest (sorted keys, so the bytes are stable)."""
    text = json.dumps({"speed_loras": speed_loras}, indent=2, sort_keys=True)
    (model_dir / MANIFEST_NAME).write_text(text + "\n")
