"""What a request will probably cost, before it runs: the figure a budget reserves.

The estimate is the average cost per image of the most recent images rendered with the same model and
preset (``SAMPLE_IMAGES`` of them), times the images asked for. With no history it falls back to
``fallback_per_megapixel`` USD per megapixel of output. A request that overrides the preset's steps or
guidance is scaled by the UNet work it asks for, ``steps x passes`` (2 passes with CFG), against the
preset's own.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, Engine, select

from rendercost.db.types import exact_sum
from rendercost.domain.costs import Stage
from rendercost.domain.presets import get_preset
from rendercost.domain.specs import RenderRequest
from rendercost.ledger.tables import cost_lines

SAMPLE_IMAGES = 200  # recent images averaged per (model, preset)
SCAN_LINES = SAMPLE_IMAGES * 16  # newest lines read to find them (an image has about 6 lines)
FALLBACK_PER_MEGAPIXEL = Decimal("0.002")  # USD per megapixel with no history (about an L4 SDXL render)
ESTIMATE_QUANTUM = Decimal("0.0000000001")


class CostEstimator:
    """Estimates from recent ledger averages per (model, preset)."""

    def __init__(self, engine: Engine, *, fallback_per_megapixel: Decimal = FALLBACK_PER_MEGAPIXEL) -> None:
        self._engine = engine
        self._fallback = fallback_per_megapixel

    def per_image(self, model: str, preset: str, width: int, height: int) -> Decimal:
        """Average USD per image of recent renders of ``model`` with ``preset``.

        The recent images are found by reading the newest lines of the model and preset backwards
        (the ``ix_cost_lines_model_preset_id`` index), at most ``SCAN_LINES`` of them, so the cost of an
        estimate does not grow with the ledger."""
        with self._engine.connect() as conn:
            keys = self._recent_images(conn, model, preset)
            if not keys:
                return (self._fallback * Decimal(width * height) / Decimal(1_000_000)).quantize(
                    ESTIMATE_QUANTUM
                )
            jobs = {job for job, _ in keys}
            wanted = set(keys)
            per_image = (cost_lines.c.job_id, cost_lines.c.image_index)
            rows = conn.execute(
                select(*per_image, exact_sum(cost_lines.c.cost))
                .where(cost_lines.c.job_id.in_(jobs))
                .group_by(*per_image)
            ).all()
        total = sum((cost for job, index, cost in rows if (job, index) in wanted), Decimal(0))
        return (total / len(wanted)).quantize(ESTIMATE_QUANTUM)

    @staticmethod
    def _recent_images(conn: Connection, model: str, preset: str) -> list[tuple[str, int]]:
        """Up to ``SAMPLE_IMAGES`` (job, image) pairs, newest line first."""
        newest = (
            select(cost_lines.c.job_id, cost_lines.c.image_index)
            .where(
                cost_lines.c.model == model,
                cost_lines.c.preset == preset,
                cost_lines.c.image_index >= 0,
                cost_lines.c.stage != str(Stage.IDLE),
            )
            .order_by(cost_lines.c.id.desc())
            .limit(SCAN_LINES)
        )
        keys: dict[tuple[str, int], None] = {}  # insertion-ordered: newest first
        for job_id, image_index in conn.execute(newest):
            keys.setdefault((job_id, image_index))
            if len(keys) == SAMPLE_IMAGES:
                break
        return list(keys)

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
