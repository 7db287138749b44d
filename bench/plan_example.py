"""Build the README's Plan example (not a benchmark): an L4 calibration history and a day of traffic.

1. A server (the real app, queue, worker and ledger over SQLite, ``device_type = "l4"``) renders 48
   calibration jobs through ``POST /v1/jobs``: speed and quality at three SDXL sizes, 1-4 images.
   The model is replaced at its one seam by a painter that reports an L4's stage seconds for SDXL
   (about 12 s per 1024x1024 30-step image: the catalog's reference figure), with 5% noise; so the
   ledger holds what an L4 fleet would have written, without an L4.
2. ``day.jsonl``: 24 hours of arrivals (a daytime peak, 2,400 requests, half of them drafts, a tenth
   exact repeats) for ``rendercost plan --workload``.

Usage: .venv/bin/python bench/plan_example.py DIR   then the command it prints.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image

from rendercost.cli.serve import embedded_server
from rendercost.domain.batch import BatchPlan, RenderedImage, RenderResult
from rendercost.domain.costs import Stage
from rendercost.domain.presets import get_preset
from rendercost.domain.runner import StepCallback
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.settings import Settings

SIZES = ("1024x1024", "832x1216", "1216x832")
MEGAPIXEL = 1024 * 1024
STEP_S = 0.38  # one 1024x1024 step with CFG on an L4: 30 steps + decode = 12 s
STEP_OVERHEAD_S = 0.02  # of which per-step overhead (scheduler, launches)


@dataclass
class L4Painter:
    """Flat-colour images at once; stage seconds an L4 would have measured for SDXL."""

    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def run(self, plan: BatchPlan, on_step: StepCallback | None = None) -> RenderResult:
        images = []
        for item in plan.items:
            buffer = io.BytesIO()
            Image.new(
                "RGB", (item.spec.width // 8, item.spec.height // 8), (item.spec.seed % 256, 90, 160)
            ).save(buffer, "PNG")
            images.append(
                RenderedImage(item=item, data=buffer.getvalue(), media_type="image/png", seed=item.spec.seed)
            )
        preset = get_preset(plan.items[0].spec.preset)
        passes = 2 if preset.uses_cfg else 1
        megapixels = sum(item.spec.pixels for item in plan.items) / MEGAPIXEL
        work = STEP_OVERHEAD_S + (STEP_S - STEP_OVERHEAD_S) * megapixels * passes / 2
        seconds = {
            Stage.TEXT_ENCODE: 0.03 + 0.01 * plan.size * passes,
            Stage.PREPARE_LATENTS: 0.001,
            Stage.DENOISE: preset.steps * work,
            Stage.DECODE: 0.6 * megapixels,
            Stage.POSTPROCESS: 0.05 * megapixels,
        }
        noisy = {stage: s * self.rng.uniform(0.95, 1.05) for stage, s in seconds.items()}
        return RenderResult(
            batch_id=plan.batch_id, images=tuple(images), stage_seconds=noisy, device="cuda:0"
        )


def calibrate(data_dir: Path) -> tuple[datetime, datetime]:
    settings = Settings(data_dir=data_dir, device_type="l4", max_wait_ms=0, max_n=4, webhook_secret="x")
    since = datetime.now(UTC) - timedelta(seconds=1)
    with embedded_server(settings, runner=L4Painter(), catalog=SettingsModelCatalog(settings)) as server:
        assert server.admin_key is not None
        headers = {"Authorization": f"Bearer {server.admin_key.secret}"}
        with TestClient(server.app) as client:
            ids = []
            for i in range(48):
                body = {
                    "prompt": f"calibration {i}",
                    "preset": ("speed", "quality")[i % 2],
                    "size": SIZES[i % 3],
                    "n": 1 + i % 4,
                    "seed": i,
                }
                ids.append(client.post("/v1/jobs", json=body, headers=headers).json()["id"])
            for job_id in ids:
                while client.get(f"/v1/jobs/{job_id}", headers=headers).json()["state"] != "succeeded":
                    pass
    return since, datetime.now(UTC) + timedelta(seconds=1)


def day(path: Path, rng: random.Random) -> None:
    """2,400 requests over 24 h, peaking at 14:00; drafts, reviews and finals; a tenth repeat."""
    lines: list[dict[str, Any]] = []
    seen: list[dict[str, Any]] = []
    while len(lines) < 2400:
        at = rng.uniform(0, 86400)
        if rng.random() > 0.5 + 0.5 * math.sin((at / 3600 - 8) / 24 * 2 * math.pi):
            continue  # thinning: fewer arrivals at night
        if seen and rng.random() < 0.1:
            lines.append({**rng.choice(seen), "at": round(at, 3)})
            continue
        render_class = rng.choice(("draft", "draft", "review", "final"))
        item = {
            "at": round(at, 3),
            "preset": "quality" if render_class == "final" else "speed",
            "size": rng.choice(SIZES),
            "n": rng.choice((1, 1, 2, 4)),
            "class": render_class,
            "prompt": f"prompt {rng.randrange(5000)}",
            "seed": rng.randrange(2**31),
        }
        seen.append(item)
        lines.append(item)
    path.write_text(
        "".join(json.dumps(line) + "\n" for line in sorted(lines, key=lambda x: x["at"])), "utf-8"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    args = parser.parse_args()
    data_dir = args.dir / "data"
    since, until = calibrate(data_dir)
    day(args.dir / "day.jsonl", random.Random(11))
    print(
        f"rendercost --data-dir {data_dir} plan --since {since.isoformat()} --until {until.isoformat()} "
        f"--workload {args.dir / 'day.jsonl'} --history-workers 2 --scenarios plan.toml"
    )


if __name__ == "__main__":
    main()
