"""Where an optimized render's cost and time go: billed cost per image by stage, and a cProfile of the
worker (render and settle) in this thread.

Queues the optimized night's commonest render, a Lightning draft (64x64, WebP, kept a day), ``--images``
times with distinct prompts and seeds through the front door over the embedded store, then runs one
burst worker in this thread with settling inline (``pipelined=False``), so cProfile sees the pipeline
call, post-processing, the receipt embedding, the storage write and the ledger transaction.

Usage: .venv/bin/python bench/savings_profile.py [--images 48] [--batch 4] [--top 30]
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

from rendercost.admission.ticket import Ticket
from rendercost.cli.local_queue import CLI_TENANT, LocalQueue, local_queue
from rendercost.domain.controls import Retention
from rendercost.domain.money import ZERO
from rendercost.domain.runner import Runner
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.setup import build_planner, build_runner
from rendercost.ledger.ledger import Ledger
from rendercost.settings import ModelConfig, Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--batch", type=int, default=4, help="max_batch_size of the worker")
    parser.add_argument("--preset", default="lightning")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
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
            print_profile(profiler, args.top)


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


def print_profile(profiler: cProfile.Profile, top: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    print(out.getvalue())


if __name__ == "__main__":
    main()
