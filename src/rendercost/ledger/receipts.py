"""The document a rendered file carries: what decided its pixels, and what it cost."""

from __future__ import annotations

from typing import Any

from rendercost.domain.costs import Receipt
from rendercost.domain.specs import RenderSpec

PAYLOAD_VERSION = 1  # bump when the payload's keys change meaning


def receipt_payload(spec: RenderSpec, receipt: Receipt, *, weights_sha256: str = "") -> dict[str, Any]:
    """JSON-ready: prompt, negative prompt, seed, preset, model, size, the steps, sampler and guidance
    that ran (the preset's, or the request's overrides), LoRAs, format, receipt, and ``model_hash``
    (the weights' SHA-256) when known (``artifacts.a1111`` writes A1111's ``parameters`` text from it)."""
    preset = spec.run_preset()
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "prompt": spec.prompt,
        "negative_prompt": spec.negative_prompt,
        "seed": spec.seed,
        "preset": spec.preset,
        "model": spec.model,
        "size": f"{spec.width}x{spec.height}",
        "steps": preset.steps,
        "sampler": str(preset.sampler),
        "guidance_scale": preset.guidance_scale,
        "loras": [{"name": lora.name, "weight": lora.weight} for lora in spec.loras],
        "format": str(spec.output_format),
        "receipt": receipt.to_dict(),
    }
    if weights_sha256:
        payload["model_hash"] = weights_sha256
    return payload
