"""The cost model recovers known coefficients, reports its error, and says when a figure is inferred."""

from __future__ import annotations

import random

import pytest

from rendercost.capacity.costmodel import INFERRED, MEASURED, features, fit_cost_model
from rendercost.capacity.history import BatchSample
from rendercost.domain.costs import Stage
from rendercost.ledger.catalog import PriceCatalog

C0, C1 = 0.004, 3e-8  # denoise: seconds per step, seconds per pixel-pass-step


def denoise_sample(
    preset: str, images: int, side: int, noise: float = 0.0, rng: random.Random | None = None
) -> BatchSample:
    pixels = images * side * side
    steps, pixel_work = features(Stage.DENOISE, preset, images, pixels)
    seconds = C0 * steps + C1 * pixel_work
    if rng is not None:
        seconds *= 1 + rng.uniform(-noise, noise)
    return BatchSample("cpu", Stage.DENOISE, seconds, preset, images, pixels)


def test_exact_samples_give_back_the_coefficients_with_zero_error() -> None:
    samples = [denoise_sample("speed", k, side) for k in (1, 2, 4) for side in (64, 128, 256)]
    model = fit_cost_model(samples, PriceCatalog.load().planner.speeds)
    fit = model.fits[("cpu", Stage.DENOISE)]
    assert fit.coefficients == pytest.approx((C0, C1), rel=1e-6)
    assert fit.relative_error == pytest.approx(0.0, abs=1e-9)
    assert model.shape("cpu", "speed", 128 * 128).evidence == MEASURED


def test_noisy_samples_report_their_error() -> None:
    rng = random.Random(5)
    samples = [
        denoise_sample("speed", k, side, 0.1, rng) for k in (1, 2, 4) for side in (64, 128) for _ in range(5)
    ]
    fit = fit_cost_model(samples, {}).fits[("cpu", Stage.DENOISE)]
    assert 0.01 < fit.relative_error < 0.1
    assert abs(fit.total_error) < 0.05


def test_a_preset_the_history_never_ran_is_scaled_by_steps_and_passes_and_marked_inferred() -> None:
    samples = [denoise_sample("speed", k, side) for k in (1, 2) for side in (64, 128)]
    model = fit_cost_model(samples, {})
    speed, lightning = model.shape("cpu", "speed", 4096), model.shape("cpu", "lightning", 4096)
    # lightning: 4 steps, one pass; speed: 30 steps, two passes
    assert lightning.fixed == pytest.approx(C0 * 4, rel=1e-6)
    assert lightning.per_image == pytest.approx(C1 * 4 * 4096, rel=1e-6)
    assert speed.per_image == pytest.approx(C1 * 30 * 2 * 4096, rel=1e-6)
    assert lightning.evidence == INFERRED and speed.evidence == MEASURED


def test_another_device_is_reached_through_the_catalog_speeds_and_marked_inferred() -> None:
    speeds = PriceCatalog.load().planner.speeds
    model = fit_cost_model([denoise_sample("speed", k, 64) for k in (1, 2)], speeds)
    cpu, l4 = model.shape("cpu", "speed", 4096), model.shape("l4", "speed", 4096)
    ratio = speeds["cpu"].relative / speeds["l4"].relative
    assert l4.fixed == pytest.approx(cpu.fixed * ratio) and l4.per_image == pytest.approx(
        cpu.per_image * ratio
    )
    assert l4.evidence == INFERRED


def test_a_negative_coefficient_is_dropped_so_work_never_makes_a_call_faster() -> None:
    samples = [
        BatchSample("cpu", Stage.DECODE, 0.02 - 1e-9 * k * 4096, "speed", k, k * 4096) for k in (1, 2, 4)
    ]
    fit = fit_cost_model(samples, {}).fits[("cpu", Stage.DECODE)]
    assert all(c >= 0 for c in fit.coefficients)
