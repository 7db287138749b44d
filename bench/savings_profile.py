"""Where an optimized render's cost and time go: billed cost per image by stage, and a cProfile of the
worker (render and settle) in this thread.

Queues the optimized night's commonest render, a Lightning draft (64x64, WebP, kept a day), ``--images``
times with distinct prompts and seeds through the front door over the embedded store, then runs one
burst worker in this thread with settling inline (``pipelined=False``), so cProfile sees the pipeline
call, post-processing, the receipt embedding, the storage write and the ledger transaction.

``--encode`` instead measures the post-processing stage's encoders side by side: WebP at libwebp effort
4 (before) and ``encoding.WEBP_METHOD`` (now), PNG at zlib level 6 (before) and
``encoding.PNG_COMPRESS_LEVEL`` (now), on a photo-like image (smooth gradients plus
sensor-like noise) at 64x64 and 1024x1024: median milliseconds and bytes, and what each costs per image
at the CPU's and an H100's on-demand price (device time) and at S3 prices for a 1- and 7-day retention.

Usage: .venv/bin/python bench/savings_profile.py [--images 48] [--batch 4] [--top 30] [--only REGEX]
       .venv/bin/python bench/savings_profile.py --encode [--rounds 15]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import numpy as np
from PIL import Image

from rendercost.admission.ticket import Ticket
from rendercost.cli.local_queue import CLI_TENANT, LocalQueue, local_queue
from rendercost.domain.controls import Retention
from rendercost.domain.money import ZERO, cost_of_seconds
from rendercost.domain.runner import Runner
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.execution.pipeline.encoding import PNG_COMPRESS_LEVEL, WEBP_METHOD, WEBP_QUALITY
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.setup import build_planner, build_runner
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.ledger import Ledger
from rendercost.ledger.pricing import BYTES_PER_GB
from rendercost.settings import ModelConfig, Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4, help="max_batch_size of the worker")
    parser.add_argument("--preset", default="lightning")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", default=None, help="a regex: show only functions whose path matches")
    parser.add_argument("--encode", action="store_true", help="measure the encoders instead")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    if args.encode:
        encoders(args.rounds)
        return
    with tempfile.TemporaryDirectory(prefix="rc-bench-profile-") as tmp:
        root = Path(tmp)
        build_tiny_model(root / "tiny-sdxl")
        settings = Settings(
            data_dir=root / "data",
            models={"default": ModelConfig(source=str(root / "tiny-sdxl"))},
            min_side=64,
            max_batch_size=args.batch,
            max_wait_ms=0,
        )
        registry = ModelRegistry(settings)
        catalog = RegistryCatalog(registry, settings.default_model)
        with local_queue(settings, catalog, registry.fingerprint) as local:
            runner = build_runner(settings, registry)
            warm = RenderRequest(spec=RenderSpec(prompt="warm up", preset=args.preset, width=64, height=64))
            local.admission.admit(Ticket(CLI_TENANT, warm))
            worker(local, runner, settings, "warm").run_burst()  # loads the model, compiles nothing
            jobs = []
            for index in range(args.images):
                spec = RenderSpec(
                    prompt=f"product photo of item {index} on a wooden table, soft studio light",
                    preset=args.preset,
                    width=64,
                    height=64,
                    seed=1000 + index,
                )
                request = RenderRequest(spec=spec, retention=Retention(format_open=True))
                admitted = local.admission.admit(Ticket(CLI_TENANT, request, render_class="draft"))
                assert admitted.job is not None
                jobs.append(admitted.job.id)
            profiled = worker(local, runner, settings, "profiled")
            profiler = cProfile.Profile()
            start = time.perf_counter()
            profiler.enable()
            profiled.run_burst()
            profiler.disable()
            wall = time.perf_counter() - start
            print_costs(Ledger(local.store.engine), jobs, wall)
            print_profile(profiler, args.top, args.only)


def worker(local: LocalQueue, runner: Runner, settings: Settings, name: str) -> Worker:
    """A burst worker that settles inline, so the profile holds the settle path too."""
    return Worker(
        local.store,
        runner,
        local.artifacts,
        build_planner(settings),
        WorkerPricing.from_settings(settings, storage_backend=local.artifacts.backend),
        biller=local.biller,
        worker_id=name,
        pipelined=False,
    )


def print_costs(ledger: Ledger, jobs: list[str], wall: float) -> None:
    cost: dict[str, Decimal] = defaultdict(lambda: ZERO)
    seconds: dict[str, float] = defaultdict(float)
    sizes: dict[int, int] = defaultdict(int)
    for job in jobs:
        for line in ledger.lines_for_job(job):
            cost[str(line.stage)] += line.cost
            seconds[str(line.stage)] += line.device_seconds
            if str(line.stage) == "denoise":
                sizes[line.batch_size] += 1
    total = sum(cost.values(), ZERO)
    n = len(jobs)
    print(f"{n} drafts, batch sizes {dict(sizes)}; wall {wall:.2f} s ({n / wall:.2f} images/s)")
    print(f"{'stage':<18}{'USD/image':>16}{'device-s/image':>16}{'share':>8}")
    for stage, amount in sorted(cost.items(), key=lambda item: -item[1]):
        share = float(amount / total) if total else 0.0
        print(f"{stage:<18}{float(amount) / n:>16.10f}{seconds[stage] / n:>16.5f}{share:>8.1%}")
    print(f"{'total':<18}{float(total) / n:>16.10f}{sum(seconds.values()) / n:>16.5f}")


def print_profile(profiler: cProfile.Profile, top: int, only: str | None) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(*((only,) if only else ()), top)
    print(out.getvalue())


def photo_like(side: int) -> np.ndarray:
    """Smooth colour gradients with mild noise, as decoded renders look to an encoder (seeded)."""
    rng = np.random.default_rng(side)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    base = np.stack([np.sin(x / 37) * 80 + 128, np.cos(y / 23) * 80 + 128, (x + y) / (2 * side) * 255], -1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def encoders(rounds: int) -> None:
    catalog = PriceCatalog.load(None)
    cpu = catalog.device_price("cpu", "on_demand", "us-east-1")
    h100 = catalog.device_price("h100", "on_demand", "us-east-1")
    gb_month = catalog.storage_prices("s3", "us-east-1").gb_month
    cases = {
        "webp effort 4 (before)": {"format": "WEBP", "quality": WEBP_QUALITY, "method": 4},
        f"webp effort {WEBP_METHOD} (now)": {
            "format": "WEBP",
            "quality": WEBP_QUALITY,
            "method": WEBP_METHOD,
        },
        "png level 6 (before)": {"format": "PNG", "compress_level": 6},
        f"png level {PNG_COMPRESS_LEVEL} (now)": {"format": "PNG", "compress_level": PNG_COMPRESS_LEVEL},
    }
    header = f"{'encoder':<24}{'side':>6}{'ms':>10}{'bytes':>10}{'cpu USD':>14}{'h100 USD':>14}"
    print(f"{header}{'S3 1d/7d USD':>26}")
    for side in (64, 1024):
        image = Image.fromarray(photo_like(side))
        for name, options in cases.items():
            seconds, size = _median_encode(image, options, rounds if side == 64 else max(3, rounds // 3))
            stored = [
                Decimal(size) / BYTES_PER_GB * Decimal(days) / Decimal(30) * gb_month for days in (1, 7)
            ]
            print(
                f"{name:<24}{side:>6}{seconds * 1000:>10.2f}{size:>10}"
                f"{float(cost_of_seconds(seconds, cpu)):>14.10f}"
                f"{float(cost_of_seconds(seconds, h100)):>14.10f}"
                f"{float(stored[0]):>13.10f}/{float(stored[1]):.10f}"
            )


def _median_encode(image: Image.Image, options: dict[str, object], rounds: int) -> tuple[float, int]:
    times, size = [], 0
    for _ in range(rounds):
        buffer = io.BytesIO()
        start = time.perf_counter()
        image.save(buffer, **options)  # type: ignore[arg-type]
        times.append(time.perf_counter() - start)
        size = len(buffer.getvalue())
    return float(np.median(times)), size


if __name__ == "__main__":
    main()
