"""The cost model: device-seconds of one pipeline call per stage, fitted on the ledger by least squares.

A call renders ``k`` images of one preset at one size (``px`` pixels each). Per stage, on one device::

    denoise          = steps * (c0 + c1 * k * px * passes)     # per-step overhead + pixel work (CFG: 2)
    text_encode      = a + b * k * passes                       # prompts encoded (negative one with CFG)
    prepare_latents, decode, postprocess = a + b * k * px

Coefficients are fitted per (device, stage) with ``numpy.linalg.lstsq``; a negative coefficient is
dropped and the rest refitted (seconds never shrink with work). Where the history has samples of a
preset, a per-(stage, preset) factor (measured / fitted) corrects the shape; a preset never seen uses
factor 1 and its figures are ``inferred``. A device the history never ran on is reached through the
catalog's relative speeds (``seconds * speed[measured device] / speed[device]``), also ``inferred``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rendercost.capacity.history import BatchSample
from rendercost.domain.costs import DEVICE_STAGES, Stage
from rendercost.domain.presets import get_preset
from rendercost.errors import InvalidRequest
from rendercost.ledger.planner_prices import DeviceSpeed

MEASURED = "measured"
INFERRED = "inferred"


def passes(preset: str) -> int:
    """UNet passes per step: 2 with classifier-free guidance, else 1."""
    return 2 if get_preset(preset).uses_cfg else 1


def features(stage: Stage, preset: str, images: int, pixels: int) -> tuple[float, ...]:
    """The regressors of one call (``pixels`` = the sum over its images)."""
    if stage == Stage.DENOISE:
        steps = float(get_preset(preset).steps)
        return (steps, steps * pixels * passes(preset))
    if stage == Stage.TEXT_ENCODE:
        return (1.0, float(images * passes(preset)))
    return (1.0, float(pixels))


@dataclass(frozen=True)
class StageFit:
    """One stage's fitted coefficients on one device, and how well they fit."""

    device_type: str  # device the samples ran on
    stage: Stage  # stage fitted
    coefficients: tuple[float, ...]  # one per regressor of ``features``
    samples: int  # calls fitted on
    relative_error: float  # sum |fitted - measured| / sum measured over the samples
    total_error: float  # (sum fitted - sum measured) / sum measured

    def seconds(self, x: Sequence[float]) -> float:
        return float(sum(c * v for c, v in zip(self.coefficients, x, strict=True)))


@dataclass(frozen=True)
class CallShape:
    """A call's time as ``fixed + per_image * k`` for one (preset, size) on one device."""

    fixed: float  # seconds per call
    per_image: float  # seconds per image in it
    evidence: str  # measured or inferred


@dataclass(frozen=True)
class CostModel:
    """Fitted stage models, preset corrections and the catalog's device speeds."""

    fits: Mapping[tuple[str, Stage], StageFit]  # (device, stage) -> fit
    corrections: Mapping[tuple[str, Stage, str], float]  # (device, stage, preset) -> measured/fitted
    speeds: Mapping[str, DeviceSpeed]  # catalog speeds
    samples: int  # calls in the history

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({device for device, _ in self.fits}))

    def shape(
        self, device_type: str, preset: str, pixels: int, *, text_encode_share: float = 1.0
    ) -> CallShape:
        """Seconds of a call of ``preset`` at ``pixels`` per image on ``device_type``; ``text_encode_share``
        scales the text-encode stage (the share of prompts the embedding cache does not answer)."""
        source, factor, evidence = self._source(device_type)
        fixed = per_image = 0.0
        for stage in DEVICE_STAGES:
            fit = self.fits.get((source, stage))
            if fit is None:
                continue
            scale = factor * self.corrections.get((source, stage, preset), 1.0)
            if (source, stage, preset) not in self.corrections:
                evidence = INFERRED
            if stage == Stage.TEXT_ENCODE:
                scale *= text_encode_share
            one, two = (
                fit.seconds(features(stage, preset, 1, pixels)),
                fit.seconds(features(stage, preset, 2, 2 * pixels)),
            )
            fixed += (2 * one - two) * scale
            per_image += (two - one) * scale
        return CallShape(fixed=max(fixed, 0.0), per_image=max(per_image, 0.0), evidence=evidence)

    def _source(self, device_type: str) -> tuple[str, float, str]:
        """The measured device to start from, the speed factor to apply, and the evidence."""
        if any(device == device_type for device, _ in self.fits):
            return device_type, 1.0, MEASURED
        measured = self.devices
        if not measured:
            raise InvalidRequest("the history has no measured pipeline calls to calibrate on", param="since")
        source = measured[0]
        if device_type not in self.speeds or source not in self.speeds:
            raise InvalidRequest(
                f"no relative speed for {device_type!r} or {source!r} in the price catalog's [speeds]",
                param="device_type",
            )
        return source, self.speeds[source].relative / self.speeds[device_type].relative, INFERRED


def fit_cost_model(samples: Iterable[BatchSample], speeds: Mapping[str, DeviceSpeed]) -> CostModel:
    """Fit every (device, stage) the samples cover; corrections per preset seen."""
    grouped: dict[tuple[str, Stage], list[BatchSample]] = defaultdict(list)
    total = 0
    for sample in samples:
        grouped[(sample.device_type, sample.stage)].append(sample)
        total += 1
    fits: dict[tuple[str, Stage], StageFit] = {}
    corrections: dict[tuple[str, Stage, str], float] = {}
    for (device, stage), group in grouped.items():
        fit = _fit(device, stage, group)
        fits[(device, stage)] = fit
        corrections.update(_corrections(fit, group))
    return CostModel(fits=fits, corrections=corrections, speeds=dict(speeds), samples=total)


def _fit(device: str, stage: Stage, group: list[BatchSample]) -> StageFit:
    x = np.array([features(stage, s.preset, s.images, s.pixels) for s in group], dtype=float)
    y = np.array([s.seconds for s in group], dtype=float)
    keep = list(range(x.shape[1]))
    coefficients = np.zeros(x.shape[1])
    while keep:
        solution, *_ = np.linalg.lstsq(x[:, keep], y, rcond=None)
        if (solution >= 0).all():
            coefficients[keep] = solution
            break
        keep.pop(int(np.argmin(solution)))
    fitted = x @ coefficients
    measured = float(y.sum()) or 1e-12
    return StageFit(
        device_type=device,
        stage=stage,
        coefficients=tuple(float(c) for c in coefficients),
        samples=len(group),
        relative_error=float(np.abs(fitted - y).sum()) / measured,
        total_error=float(fitted.sum() - y.sum()) / measured,
    )


def _corrections(fit: StageFit, group: list[BatchSample]) -> dict[tuple[str, Stage, str], float]:
    measured: dict[str, float] = defaultdict(float)
    fitted: dict[str, float] = defaultdict(float)
    for s in group:
        measured[s.preset] += s.seconds
        fitted[s.preset] += fit.seconds(features(fit.stage, s.preset, s.images, s.pixels))
    return {
        (fit.device_type, fit.stage, preset): (measured[preset] / fitted[preset])
        if fitted[preset] > 0
        else 1.0
        for preset in measured
    }
