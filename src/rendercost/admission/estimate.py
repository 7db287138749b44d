"""What a request will probably cost, before it runs: the figure a budget reserves.

The estimate is the average cost per image of the most recent images rendered with the same model and
preset (``SAMPLE_IMAGES`` of them), times the images asked for. With no history it falls back to
``fallback_per_megapixel`` USD per megapixel of output. A request that overrides the preset's steps or
guidance is scaled by the UNet work it asks for, ``steps x passes`` (2 passes with CFG), against the
preset's own.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Engine, func, select

from rendercost.domain.costs import Stage
from rendercost.domain.presets import get_preset
from rendercost.domain.specs import RenderRequest
from rendercost.ledger.tables import cost_lines

SAMPLE_IMAGES = 200  # recent images averaged per (model, preset)
FALLBACK_PER_MEGAPIXEL = Decimal("0.002")  # USD per megapixel with no history (about an L4 SDXL render)
ESTIMATE_QUANTUM = Decimal("0.0000000001")


class CostEstimator:
    """Estimates from recent ledger averages per (model, preset)."""

    def __init__(self, engine: Engine, *, fallback_per_megapixel: Decimal = FALLBACK_PER_MEGAPIXEL) -> None:
        self._engine = engine
        self._fallback = fallback_per_megapixel

    def per_image(self, model: str, preset: str, width: int, height: int) -> Decimal:
        """Average USD per image of recent renders of ``model`` with ``preset``."""
        image = (cost_lines.c.job_id, cost_lines.c.image_index)
        recent = (
            select(*image, func.max(cost_lines.c.id).label("last"))
            .where(
                cost_lines.c.model == model,
                cost_lines.c.preset == preset,
                cost_lines.c.image_index >= 0,
                cost_lines.c.stage != str(Stage.IDLE),
            )
            .group_by(*image)
            .order_by(func.max(cost_lines.c.id).desc())
            .limit(SAMPLE_IMAGES)
            .subquery()
        )
        with self._engine.connect() as conn:
            keys = [(row.job_id, row.image_index) for row in conn.execute(select(recent))]
            if not keys:
                return (self._fallback * Decimal(width * height) / Decimal(1_000_000)).quantize(
                    ESTIMATE_QUANTUM
                )
            jobs = {job for job, _ in keys}
            wanted = set(keys)
            rows = conn.execute(
                select(cost_lines.c.job_id, cost_lines.c.image_index, cost_lines.c.cost).where(
                    cost_lines.c.job_id.in_(jobs)
                )
            ).all()
        total = sum((row.cost for row in rows if (row.job_id, row.image_index) in wanted), Decimal(0))
        return (total / len(wanted)).quantize(ESTIMATE_QUANTUM)

    def estimate(self, request: RenderRequest) -> Decimal:
        """USD the request will probably cost."""
        spec = request.spec
        per_image = self.per_image(spec.model, spec.preset, spec.width, spec.height)
        if spec.steps is None and spec.guidance_scale is None:
            return per_image * request.n
        named = get_preset(spec.preset)
        ran = spec.run_preset(named)
        scale = Decimal(ran.steps * ran.unet_passes) / Decimal(named.steps * named.unet_passes)
        return (per_image * scale).quantize(ESTIMATE_QUANTUM) * request.n
