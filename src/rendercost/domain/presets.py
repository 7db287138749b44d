"""Performance presets: the step counts, guidance and samplers that decide a render's cost.

Values follow ../shared/reference/presets.md (Fooocus' flags). The mapping from ``sampler`` to a real
diffusers noise scheduler lives in ``execution.noise_schedulers``; this module stays pure data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from rendercost.errors import InvalidRequest, UnknownPreset


class Sampler(StrEnum):
    """Sampler families a preset can ask for."""

    DPMPP_2M_SDE_KARRAS = "dpmpp_2m_sde_karras"  # DPM++ 2M SDE, Karras sigmas
    LCM = "lcm"  # latent consistency sampler
    EULER_TRAILING = "euler_trailing"  # Euler, sgm_uniform / trailing timestep spacing
    DPMPP_SDE_KARRAS = "dpmpp_sde_karras"  # DPM++ SDE, Karras sigmas (torchsde)
    DPMPP_2M = "dpmpp_2m"  # DPM++ 2M, the model's own sigmas
    EULER_A = "euler_a"  # Euler ancestral
    EULER = "euler"  # Euler, the model's own timestep spacing
    DDIM = "ddim"  # DDIM (eta 0: deterministic)


# The samplers a request may name (``sampler`` override); the others are preset-internal.
REQUEST_SAMPLERS: tuple[Sampler, ...] = (
    Sampler.DPMPP_2M_SDE_KARRAS,
    Sampler.DPMPP_2M,
    Sampler.EULER_A,
    Sampler.EULER,
    Sampler.DDIM,
    Sampler.LCM,
)


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

    @property
    def unet_passes(self) -> int:
        """UNet evaluations per denoising step: 2 with classifier-free guidance, else 1."""
        return 2 if self.uses_cfg else 1

    def overridden(
        self, *, steps: int | None = None, guidance_scale: float | None = None, sampler: Sampler | None = None
    ) -> Preset:
        """This preset with a request's overrides (None keeps the preset's value): what actually runs."""
        return Preset(
            name=self.name,
            steps=self.steps if steps is None else steps,
            guidance_scale=self.guidance_scale if guidance_scale is None else guidance_scale,
            sampler=self.sampler if sampler is None else sampler,
            speed_lora=self.speed_lora,
            speed_lora_weight=self.speed_lora_weight,
        )


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


def parse_sampler(name: str, *, param: str = "sampler") -> Sampler:
    """A request's sampler by name (one of ``REQUEST_SAMPLERS``, case-insensitive); ``InvalidRequest``
    naming ``param`` otherwise."""
    text = name.strip().lower()
    for sampler in REQUEST_SAMPLERS:
        if sampler.value == text:
            return sampler
    valid = ", ".join(sampler.value for sampler in REQUEST_SAMPLERS)
    raise InvalidRequest(f"unknown sampler {name!r}; choose one of: {valid}", param=param)


def get_preset(name: str) -> Preset:
    """Return the preset called ``name``; raise ``UnknownPreset`` naming the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        valid = ", ".join(PRESETS)
        raise UnknownPreset(f"unknown preset {name!r}; choose one of: {valid}", param="preset") from None
