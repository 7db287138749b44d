"""Samplers as diffusers noise schedulers: the presets' (see ../shared/reference/presets.md) and the
ones a request may name (``domain.presets.REQUEST_SAMPLERS``).

"Noise scheduler" is diffusers' scheduler: it picks timesteps and steps the latents. The batching
step that picks jobs is ``batching.BatchPlanner``, never called a scheduler here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    DPMSolverSDEScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    LCMScheduler,
)

from rendercost.domain.presets import Sampler

# torchsde's Brownian interval warns when a float32 query lands a rounding error past its end; the
# value is clamped and harmless (diffusers' DPM++ SDE sampler hits it on most runs).
warnings.filterwarnings("ignore", message="Should have tb<=t1", category=UserWarning)

# sampler -> (diffusers class, config overrides on top of the model's own scheduler config)
NOISE_SCHEDULERS: dict[Sampler, tuple[type[Any], dict[str, Any]]] = {
    # Fooocus' DPM++ 2M SDE Karras
    Sampler.DPMPP_2M_SDE_KARRAS: (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "sde-dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    # LCM-LoRA's sampler
    Sampler.LCM: (LCMScheduler, {}),
    # SDXL-Lightning: Euler with trailing timesteps (Fooocus' sgm_uniform)
    Sampler.EULER_TRAILING: (EulerDiscreteScheduler, {"timestep_spacing": "trailing"}),
    # DPM++ SDE Karras (second order: two UNet passes per step but the last); needs torchsde
    Sampler.DPMPP_SDE_KARRAS: (DPMSolverSDEScheduler, {"use_karras_sigmas": True}),
    # the request-only samplers (A1111 names: DPM++ 2M, Euler a, Euler, DDIM)
    Sampler.DPMPP_2M: (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": False},
    ),
    Sampler.EULER_A: (EulerAncestralDiscreteScheduler, {}),
    Sampler.EULER: (EulerDiscreteScheduler, {}),
    Sampler.DDIM: (DDIMScheduler, {}),
}


def make_noise_scheduler(sampler: Sampler, base_config: Mapping[str, Any]) -> Any:
    """A fresh noise scheduler for ``sampler``, built from a model's scheduler config.

    ``base_config`` carries the model's training schedule (betas, prediction type); the sampler's
    overrides replace only what selects the algorithm. Build one per pipeline call: they keep state.
    """
    scheduler_class, overrides = NOISE_SCHEDULERS[sampler]
    return scheduler_class.from_config(dict(base_config), **overrides)


def bind_seeds(noise_scheduler: Any, seeds: Sequence[int]) -> None:
    """Give stochastic samplers one noise stream per image, so an image is the same in any batch.

    Samplers that draw noise through the pipeline's per-image generators need nothing here; the
    DPM++ SDE sampler draws from a Brownian tree, seeded per image here.
    """
    if isinstance(noise_scheduler, DPMSolverSDEScheduler):
        noise_scheduler.noise_sampler_seed = list(seeds)
