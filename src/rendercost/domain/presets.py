"""Performance presets: the step counts, guidance and samplers that decide a render's cost.

Values follow ../shared/reference/presets.md (Fooocus' flags). The mapping from ``sampler`` to a real
diffusers noise scheduler lives in ``execution.noise_schedulers``; this module stays pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rendercost.errors import UnknownPreset


class Sampler(StrEnum):
    """Sampler families a preset can ask for."""

    DPMPP_2M_SDE_KARRAS = "dpmpp_2m_sde_karras"  # DPM++ 2M SDE, Karras sigmas
    LCM = "lcm"  # latent consistency sampler
    EULER_TRAILING = "euler_trailing"  # Euler, sgm_uniform / trailing timestep spacing
    DPMPP_SDE_KARRAS = "dpmpp_sde_karras"  # DPM++ SDE, Karras sigmas (torchsde)


@dataclass(frozen=True)
class Preset:
    """One performance preset."""

    name: str  # the public name, e.g. "lightning"
    steps: int  # denoising steps
    guidance_scale: float  # CFG; 1.0 means one UNet pass per step and no negative prompt
    sampler: Sampler  # noise sampler family
    speed_lora: str | None  # role of the speed LoRA the model must configure, or None
    speed_lora_weight: float  # adapter weight of that LoRA

    @property
    def uses_cfg(self) -> bool:
        """True when the negative branch runs (two UNet passes per step)."""
        return self.guidance_scale > 1.0


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("quality", 60, 4.0, Sampler.DPMPP_2M_SDE_KARRAS, None, 0.0),
        Preset("speed", 30, 4.0, Sampler.DPMPP_2M_SDE_KARRAS, None, 0.0),
        Preset("extreme-speed", 8, 1.0, Sampler.LCM, "extreme-speed", 1.0),
        Preset("lightning", 4, 1.0, Sampler.EULER_TRAILING, "lightning", 1.0),
        Preset("hyper-sd", 4, 1.0, Sampler.DPMPP_SDE_KARRAS, "hyper-sd", 0.8),
    )
}

DEFAULT_PRESET = "speed"


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ``UnknownPreset`` naming the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(PRESETS)
        raise UnknownPreset(f"unknown preset {name!r}; choose one of: {valid}", param="preset") from None
