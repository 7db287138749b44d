"""What settling a rendered job costs the worker: SQL statements and milliseconds per job, for batches of
1 and of ``--batch``, side by side in one run.

A worker settles a batch (receipts embedded, files stored, the job rows, cost lines, saving lines, solo
references and spend rollup written) on a thread beside the next render, so on a Python-bound render
(the tiny model on a CPU) every millisecond of settling holds the GIL that render needs. This queues
``--images`` Lightning drafts (64x64, distinct prompts and seeds) through the front door over the
embedded store, renders them with a burst worker that settles inline, and counts the statements sent
to the database (an SQLAlchemy event) and the time spent settling, per job.

Usage: .venv/bin/python bench/settle_cost.py [--images 32] [--batch 4]
About a minute here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rendercost.admission.ticket import Ticket
from rendercost.cli.local_queue import CLI_TENANT, LocalQueue, local_queue
from rendercost.domain.controls import Retention
from rendercost.domain.runner import Runner
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.execution.worker.settle import Settler
from rendercost.execution.worker.setup import build_runner
from rendercost.settings import ModelConfig, Settings
from savings_profile import worker


def settle_per_job(local: LocalQueue, runner: Runner, settings: Settings, images: int) -> tuple[float, float]:
    """(statements, milliseconds) spent settling per job, over ``images`` one-image drafts."""
    for index in range(images):
        spec = RenderSpec(
            prompt=f"product photo of item {index} on a wooden table",
            preset="lightning",
            width=64,
            height=64,
            seed=1000 + index,
        )
        request = RenderRequest(spec=spec, retention=Retention(format_open=True))
        local.admission.admit(Ticket(CLI_TENANT, request, render_class="draft"))
    statements: Counter[bool] = Counter()
    settling = [False]
    spent = [0.0]

    def count(*_args: Any) -> None:
        statements[settling[0]] += 1

    original = Settler._handle

    def timed(self: Settler, work: Any) -> None:
        settling[0] = True
        started = time.perf_counter()
        try:
            original(self, work)
        finally:
            spent[0] += time.perf_counter() - started
            settling[0] = False

    event.listen(local.store.engine, "before_cursor_execute", count)
    Settler._handle = timed  # type: ignore[method-assign]
    try:
        worker(local, runner, settings, f"batch-{settings.max_batch_size}").run_burst()
    finally:
        Settler._handle = original  # type: ignore[method-assign]
        event.remove(local.store.engine, "before_cursor_execute", count)
    return statements[True] / images, spent[0] * 1000 / images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    found: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="rc-bench-settle-") as tmp:
        root = Path(tmp)
        build_tiny_model(root / "tiny-sdxl")
        for batch in (1, args.batch):
            settings = Settings(
                data_dir=root / f"data-{batch}",
                models={"default": ModelConfig(source=str(root / "tiny-sdxl"))},
                min_side=64,
                max_batch_size=batch,
                max_wait_ms=0,
            )
            registry = ModelRegistry(settings)
            catalog = RegistryCatalog(registry, settings.default_model)
            with local_queue(settings, catalog, registry.fingerprint) as local:
                runner = build_runner(settings, registry)
                settle_per_job(local, runner, settings, 2)  # warm: model loaded, statements compiled
                found[batch] = settle_per_job(local, runner, settings, args.images)
    print(f"settling {args.images} Lightning drafts (64x64), per job")
    print(f"{'batch size':<12}{'statements':>12}{'ms':>8}")
    for batch, (statements, ms) in found.items():
        print(f"{batch:<12}{statements:>12.1f}{ms:>8.2f}")
    (one_s, one_ms), (many_s, many_ms) = found[1], found[args.batch]
    ratios = f"statements {many_s / one_s:.2f}x, time {many_ms / one_ms:.2f}x"
    print(f"batch of {args.batch} / batch of 1: {ratios}")


if __name__ == "__main__":
    main()
