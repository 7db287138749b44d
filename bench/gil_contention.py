"""A render beside busy Python threads, at Python's GIL switch interval (5 ms) and at rendercost's
(``gil_switch_interval_ms``, 0.5 ms), side by side in one process.

A worker's render loop lets go of the GIL around every tensor op and must get it back before the next
one; in ``rendercost serve`` the API, settling and lease threads run Python beside it. This measures
what that costs: the tiny model's speed preset (30 steps, CFG) on one torch thread, first with nothing
beside it, then with ``--threads`` threads each running ``--burst-ms`` of pure Python (JSON and hashing,
like admission's bookkeeping) then sleeping ``--sleep-ms``. Each round renders once per interval, in
turn, so drift hits both alike; the medians and their ratios are printed.

Usage: .venv/bin/python bench/gil_contention.py [--rounds 8] [--threads 2] [--burst-ms 3] [--sleep-ms 5]
About a minute here.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
from diffusers import StableDiffusionXLPipeline

from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.settings import Settings

PYTHON_DEFAULT_S = 0.005


def admission_like(stop: threading.Event, burst_s: float, sleep_s: float) -> None:
    """Pure Python for ``burst_s``, then a sleep, until ``stop``."""
    while not stop.is_set():
        started = time.perf_counter()
        while time.perf_counter() - started < burst_s:
            json.dumps([hashlib.sha256(str(i).encode()).hexdigest() for i in range(20)])
        time.sleep(sleep_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--burst-ms", type=float, default=3.0)
    parser.add_argument("--sleep-ms", type=float, default=5.0)
    args = parser.parse_args()
    ours_s = Settings(config=None, env_file=None, secrets_dir=None).gil_switch_interval_ms / 1000
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="rc-bench-gil-") as tmp:
        model_dir = Path(tmp) / "tiny-sdxl"
        build_tiny_model(model_dir)
        pipeline = StableDiffusionXLPipeline.from_pretrained(str(model_dir))
        pipeline.set_progress_bar_config(disable=True)

        def render() -> float:
            started = time.perf_counter()
            pipeline(
                prompt=["a red fox in snow"], num_inference_steps=30, guidance_scale=4.0,
                width=64, height=64, output_type="latent",
            )  # fmt: skip
            return time.perf_counter() - started

        render()  # warm-up
        seconds: dict[tuple[str, float], list[float]] = {}
        for beside in ("nothing", "busy threads"):
            stop = threading.Event()
            threads = [
                threading.Thread(
                    target=admission_like,
                    args=(stop, args.burst_ms / 1000, args.sleep_ms / 1000),
                    daemon=True,
                )
                for _ in range(args.threads if beside != "nothing" else 0)
            ]
            for thread in threads:
                thread.start()
            for _ in range(args.rounds):
                for interval in (PYTHON_DEFAULT_S, ours_s):
                    sys.setswitchinterval(interval)
                    seconds.setdefault((beside, interval), []).append(render())
            stop.set()
            for thread in threads:
                thread.join()
    sys.setswitchinterval(PYTHON_DEFAULT_S)
    print(f"speed preset on the tiny model, 1 torch thread, median of {args.rounds} renders (ms)")
    print(f"{'beside the render':<40}{'5 ms':>10}{f'{ours_s * 1000:g} ms':>10}{'ratio':>8}")
    for beside in ("nothing", "busy threads"):
        slow = statistics.median(seconds[(beside, PYTHON_DEFAULT_S)]) * 1000
        fast = statistics.median(seconds[(beside, ours_s)]) * 1000
        label = (
            beside
            if beside == "nothing"
            else (f"{args.threads} threads: {args.burst_ms:g} ms Python, {args.sleep_ms:g} ms sleep")
        )
        print(f"{label:<40}{slow:>10.0f}{fast:>10.0f}{fast / slow:>8.2f}")


if __name__ == "__main__":
    main()
