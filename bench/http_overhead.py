"""What the HTTP path costs over calling the runner directly, measured side by side in one run.

Both sides render the same tiny-model image (64x64, lightning preset, batch size 1) on ONE warm
runner, one request at a time:

- direct: ``runner.run(plan)`` in a loop;
- HTTP: ``POST /v1/images/generations`` to a real uvicorn server on 127.0.0.1 with one in-process worker
  (authenticate, rate limits, validate, enqueue in SQLite, worker claim, render, price, store the file
  with its receipt, settle in one transaction, answer with the image URL).

The two alternate in blocks so drift on a shared machine hits both alike. Prints renders/s and p50/p99
latency for each, and the overhead of HTTP over direct (goal: under 5%). The batching window is 0
(``max_wait_ms=0``) so both sides run batches of one.

Usage: .venv/bin/python bench/http_overhead.py [--renders 40] [--blocks 4] [--size 64] [--data-dir DIR]
The first run builds the tiny model into the data dir (about a minute); pass --data-dir to reuse it.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.cli.serve import embedded_server
from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.specs import RenderSpec
from rendercost.execution.models.catalog import RegistryCatalog
from rendercost.execution.models.registry import ModelRegistry
from rendercost.execution.pipeline.runner import DiffusersRunner
from rendercost.settings import Settings
from rendercost.testing.runner import TimedRunner

PRESET = "lightning"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[], None], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--renders", type=int, default=40, help="renders per side (after 3 warm-ups)")
    parser.add_argument("--blocks", type=int, default=4, help="alternating blocks per side")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="reuse a data dir (tiny model built once)"
    )
    args = parser.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="rendercost-bench-"))
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / f'bench-{uuid.uuid4().hex[:8]}.db'}",
        min_side=min(64, args.size),
        max_wait_ms=0,
        max_batch_size=1,
        rate_limit_key_requests_per_minute=0,
        rate_limit_tenant_requests_per_minute=0,
        rate_limit_key_images_per_minute=0,
        rate_limit_tenant_images_per_minute=0,
        webhook_secret="bench",
    )
    registry = ModelRegistry(settings)
    runner = DiffusersRunner(registry, settings)
    spec = RenderSpec(prompt="a lighthouse at dusk", preset=PRESET, width=args.size, height=args.size, seed=1)

    def direct() -> None:
        runner.run(BatchPlan(uuid.uuid4().hex, (BatchItem("", 0, spec),)))

    inside = TimedRunner(runner)  # so the HTTP path's render time and its overhead can be told apart
    catalog = RegistryCatalog(registry, settings.default_model)
    with (
        embedded_server(settings, workers=1, runner=inside, catalog=catalog) as server,
        uvicorn_thread(server.app) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        key = server.services.keys.create("bench").secret
        body = {"prompt": spec.prompt, "preset": PRESET, "size": f"{args.size}x{args.size}", "seed": 1}

        def http() -> None:
            response = client.post(
                "/v1/images/generations",
                json=body,
                # every request renders: a repeat would otherwise be answered by the exact-result cache
                headers={"Authorization": f"Bearer {key}", "Cache-Control": "no-store"},
            )
            response.raise_for_status()

        timed(direct, 3)
        timed(http, 3)
        inside.call_seconds.clear()
        per_block = max(1, args.renders // args.blocks)
        results: dict[str, list[float]] = {"direct runner": [], "HTTP API": []}
        for _ in range(args.blocks):
            results["direct runner"] += timed(direct, per_block)
            results["HTTP API"] += timed(http, per_block)

    renders = per_block * args.blocks
    print(f"tiny model, {args.size}x{args.size}, preset {PRESET}, batch size 1, {renders} renders per side")
    print(f"{'path':<14} {'renders/s':>10} {'p50 ms':>9} {'p99 ms':>9}")
    stats = {}
    for name, latencies in results.items():
        rate = len(latencies) / sum(latencies)
        p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
        stats[name] = (rate, p50, p99)
        print(f"{name:<14} {rate:>10.2f} {p50 * 1000:>9.1f} {p99 * 1000:>9.1f}")
    (d_rate, d_p50, d_p99), (h_rate, h_p50, h_p99) = stats["direct runner"], stats["HTTP API"]
    rendering = statistics.median(inside.call_seconds)
    print(
        f"HTTP path breakdown (p50): runner {rendering * 1000:.1f} ms inside the worker, "
        f"everything else {(h_p50 - rendering) * 1000:.1f} ms "
        "(auth, queue, claim, price, store, settle, HTTP)"
    )
    print(
        f"HTTP / direct: throughput {h_rate / d_rate:.3f}x, p50 latency {h_p50 / d_p50:.3f}x, "
        f"p99 latency {h_p99 / d_p99:.3f}x; overhead {(d_rate / h_rate - 1) * 100:+.1f}% (goal < 5%)"
    )


if __name__ == "__main__":
    main()
