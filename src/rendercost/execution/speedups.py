"""Runner speed switches (SDPA, channels_last, fused QKV, torch.compile, int8/fp8, VAE tiling).

Placeholder with the final signatures: the GPU work fills these in. The runner calls
``apply_speedups`` once after loading a pipeline and ``prepare_for_size`` before every call.
"""

from __future__ import annotations

from typing import Any

from rendercost.settings import SpeedSwitches


def apply_speedups(pipeline: Any, switches: SpeedSwitches, device: str) -> None:
    """Apply the load-time switches to ``pipeline`` in place."""


def prepare_for_size(pipeline: Any, switches: SpeedSwitches, width: int, height: int) -> None:
    """Apply the per-call switches that depend on the image size (int8 rule, VAE tiling)."""
