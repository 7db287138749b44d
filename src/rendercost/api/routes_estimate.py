"""``POST /v1/estimate``: what a render would cost and take, per preset, before it is submitted.

The cost is the figure admission reserves against the budgets (``admission.estimate.CostEstimator``,
the very estimator of ``services.admission``'s budget step): the recent average per image of the same
model and preset, times ``n``. The time is the recent average of device seconds per image (the ledger's
render stages), None with no history. When the request names a prompt and a fixed seed and every image
is already in the exact-result cache, the preset's row says ``cached`` and costs $0: the job would be
answered from stored files. Nothing is reserved, queued or billed.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from rendercost.admission.estimate import SAMPLE_IMAGES, CostEstimator
from rendercost.api.deps import ApiServices, Authenticated, blocking, services
from rendercost.api.schemas import MAX_PROMPT_CHARS, ImageFormat, LoraIn
from rendercost.api.translate import build_request, check_n, resolve_loras, resolve_model, resolve_size
from rendercost.domain.controls import ClientInfo
from rendercost.domain.costs import DEVICE_STAGES
from rendercost.domain.money import usd_text
from rendercost.domain.presets import PRESETS, get_preset
from rendercost.domain.specs import MAX_SEED, RANDOM_SEED, RenderRequest
from rendercost.ledger.tables import cost_lines

router = APIRouter(tags=["jobs"])


class EstimateIn(BaseModel):
    """The render being considered; the same fields as ``POST /v1/jobs`` where they matter to cost."""

    prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)  # with a fixed seed: the cache check
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    model: str | None = None  # default: settings.default_model
    size: str | None = None  # "WxH"; default: settings.default_size
    n: int = Field(default=1, ge=1)
    seed: int | None = Field(default=None, ge=-1, le=MAX_SEED)  # None or -1: random (never cached)
    loras: list[LoraIn] = Field(default_factory=list, max_length=8)
    styles: list[str] = Field(default_factory=list, max_length=16)
    output_format: ImageFormat = "png"
    presets: list[str] | None = Field(default=None, max_length=len(PRESETS))  # default: every preset


class PresetEstimate(BaseModel):
    preset: str
    available: bool  # False: the model lacks the speed LoRA this preset needs
    cost_usd: str  # for all n images; "0" when cached
    per_image_usd: str  # the estimator's average per image (what a render would cost uncached)
    seconds_per_image: float | None  # recent average device seconds per image; None: no history
    cached: bool  # every image is in the exact-result cache: answered at $0
    steps: int  # denoising steps of the preset


class EstimateOut(BaseModel):
    model: str
    size: str  # "WxH"
    n: int
    estimates: list[PresetEstimate]


def seconds_per_image(engine: Engine, model: str, preset: str) -> float | None:
    """Average device seconds per image of the recent renders of ``model`` with ``preset``."""
    image = (cost_lines.c.job_id, cost_lines.c.image_index)
    recent = (
        select(func.sum(cost_lines.c.device_seconds).label("seconds"))
        .where(
            cost_lines.c.model == model,
            cost_lines.c.preset == preset,
            cost_lines.c.image_index >= 0,
            cost_lines.c.stage.in_([str(stage) for stage in DEVICE_STAGES]),
        )
        .group_by(*image)
        .order_by(func.max(cost_lines.c.id).desc())
        .limit(SAMPLE_IMAGES)
        .subquery()
    )
    with engine.connect() as conn:
        row = conn.execute(select(func.avg(recent.c.seconds), func.count())).one()
    return round(float(row[0]), 6) if row[1] else None


def _estimator(svc: ApiServices) -> CostEstimator:
    budget = svc.admission.budget
    if budget is not None:
        return budget.estimator  # the one admission reserves with
    return CostEstimator(svc.keys.engine)


def _one(svc: ApiServices, request: RenderRequest, cached: bool) -> PresetEstimate:
    spec = request.spec
    available = svc.catalog.preset_available(spec.model, spec.preset)
    per_image = _estimator(svc).per_image(spec.model, spec.preset, spec.width, spec.height)
    cost = Decimal(0) if cached else per_image * request.n
    return PresetEstimate(
        preset=spec.preset,
        available=available,
        cost_usd=usd_text(cost),
        per_image_usd=usd_text(per_image),
        seconds_per_image=seconds_per_image(svc.keys.engine, spec.model, spec.preset),
        cached=cached,
        steps=get_preset(spec.preset).steps,
    )


def estimate(svc: ApiServices, body: EstimateIn) -> EstimateOut:
    """Blocking. One row per preset asked (each checked: an unknown one is a 400)."""
    n = check_n(svc.settings, body.n)
    model = resolve_model(svc.catalog, svc.settings, body.model, openai=False)
    size = resolve_size(svc.settings, body.size)
    base = build_request(
        prompt=body.prompt or " ",
        negative_prompt=body.negative_prompt,
        model=model,
        preset=next(iter(PRESETS)),
        size=size,
        seed=RANDOM_SEED if body.seed is None else body.seed,
        n=n,
        loras=resolve_loras(svc.catalog, model, [(lora.name, lora.weight) for lora in body.loras]),
        output_format=body.output_format,
        priority="interactive",
        styles=tuple(body.styles),
        client=ClientInfo("estimate"),
    )
    rows = []
    for name in body.presets or list(PRESETS):
        preset = get_preset(name).name
        request = replace(base, spec=replace(base.spec, preset=preset))
        cached = bool(body.prompt) and svc.exact is not None and svc.exact.find(request) is not None
        rows.append(_one(svc, request, cached))
    return EstimateOut(model=model, size=f"{size[0]}x{size[1]}", n=n, estimates=rows)


@router.post("/v1/estimate", response_model=EstimateOut)
async def post_estimate(request: Request, body: EstimateIn, _key: Authenticated) -> EstimateOut:
    """The estimated cost and device time of a render for each preset, and whether it is cached."""
    svc = services(request)
    return await blocking(estimate, svc, body)
