"""What the caches save, measured side by side in one run.

1. Exact-result cache through HTTP (uvicorn on 127.0.0.1, the real app, a worker rendering the tiny
   model on the CPU): latency of ``POST /v1/images/generations`` answered from the cache against a
   full render of the same spec (``Cache-Control: no-cache`` renders it again), p50/p99 and the ratio;
   then the same through the async jobs API (``POST /v1/jobs``, polled until it succeeded): a hit comes
   back already succeeded, a render is queued, claimed and settled.
2. Semantic rewrite cache: lookup latency in one scope holding 10k and 100k entries (random unit
   vectors) that all share one guard, so every entry is a candidate (the worst case), given the
   query's vector; a lookup of a prompt whose guard no entry shares (a miss with nothing embedded);
   and the cost of embedding one prompt with all-MiniLM-L6-v2 (paid by a lookup that has candidates
   and no vector for the prompt yet).

Usage: .venv/bin/python bench/cache.py [--renders 10] [--hits 200] [--lookups 200] [--preset lightning]
Default run: about a minute on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import numpy as np

from rendercost.api.threaded_server import uvicorn_thread
from rendercost.caches.semantic_cache import SemanticCache, scope_key
from rendercost.cli.serve import embedded_server
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.execution.models.sentence_embedder import MiniLmEmbedder
from rendercost.execution.models.tiny_model import build_tiny_model
from rendercost.settings import ModelConfig, Settings
from rendercost.testing.waiting import wait_for_job

POLL_S = 0.01  # how often the jobs benchmark polls a queued job (faster polling slows the render)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def timed(call: Callable[[], object], rounds: int) -> list[float]:
    seconds = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - start)
    return seconds


def exact_cache(root: Path, renders: int, hits: int, preset: str) -> None:
    model_dir = root / "tiny-sdxl"
    build_tiny_model(model_dir)
    settings = Settings(
        data_dir=root / "data",
        models={"default": ModelConfig(source=str(model_dir))},
        min_side=64,
        default_size="64x64",
        max_wait_ms=0,
        images_wait_timeout_s=120,
        rate_limit_key_images_per_minute=0,  # the benchmark measures the cache, not the limiter
        rate_limit_tenant_images_per_minute=0,
        rate_limit_key_requests_per_minute=0,
        rate_limit_tenant_requests_per_minute=0,
    )
    with embedded_server(settings, workers=1) as server, uvicorn_thread(server.app) as url:
        secret = server.services.keys.create("bench").secret
        body = {"prompt": "a lighthouse at dusk", "seed": 7, "preset": preset, "response_format": "url"}
        auth = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=url, timeout=120) as client:

            def post(headers: dict[str, str]) -> str:
                response = client.post("/v1/images/generations", json=body, headers=headers)
                response.raise_for_status()
                return str(response.json()["rendercost"]["cache"]["result"])

            def submit(headers: dict[str, str]) -> str:
                job_body = {key: body[key] for key in ("prompt", "seed", "preset")}
                job = client.post("/v1/jobs", json=job_body, headers=headers).raise_for_status().json()
                job_id = job["id"]
                job = wait_for_job(
                    lambda: client.get(f"/v1/jobs/{job_id}", headers=auth).raise_for_status().json(),
                    what=f"job {job_id}",
                    timeout_s=600,
                    interval_s=POLL_S,
                )
                assert job["state"] == "succeeded", job
                return str(job["rendercost"]["cache"]["result"])

            post({**auth, "Cache-Control": "no-cache"})  # warm-up: loads the model, stores the result
            full = timed(lambda: post({**auth, "Cache-Control": "no-cache"}), renders)
            assert post(auth) == "hit"
            hit = timed(lambda: post(auth), hits)
            job_full = timed(lambda: submit({**auth, "Cache-Control": "no-cache"}), renders)
            assert submit(auth) == "hit"
            job_hit = timed(lambda: submit(auth), hits)
    print(f"exact-result cache over HTTP, tiny model 64x64 preset={preset} (CPU)")
    report("images: full render", full)
    report("images: cache hit", hit)
    print(f"  ratio full/hit at p50: {percentile(full, 50) / percentile(hit, 50):.1f}x")
    report("jobs: full render (polled)", job_full)
    report("jobs: cache hit", job_hit)
    print(f"  ratio full/hit at p50: {percentile(job_full, 50) / percentile(job_hit, 50):.1f}x")


def report(label: str, seconds: list[float]) -> None:
    p50, p99 = percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000
    print(f"  {label:<36} n={len(seconds):4d}  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms")


def letters(number: int) -> str:
    """``number`` in base 26 as lowercase letters: a word no guard reads as a number, colour or noun."""
    word = ""
    while True:
        number, digit = divmod(number, 26)
        word = chr(ord("a") + digit) + word
        if number == 0:
            return word


def semantic_cache(root: Path, lookups: int) -> None:
    embedder = MiniLmEmbedder()
    embedder.embed(["warm up"])
    embed = timed(lambda: embedder.embed(["a white sneaker on the beach at golden hour"]), 50)
    print("semantic rewrite cache (numpy index, one scope)")
    report("embed one prompt (MiniLM, CPU)", embed)
    rng = np.random.default_rng(0)
    engine = create_db_engine(f"sqlite:///{root / 'semantic.sqlite'}")
    migrate(engine)
    scope = scope_key("bench", "default", {})
    for size in (10_000, 100_000):
        cache = SemanticCache(engine, embedder)
        vectors = rng.standard_normal((size, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        cache.index_only("acme", scope, [f"entry {letters(i)}" for i in range(size)], vectors)
        query = vectors[size // 2]
        asked = partial(cache.lookup, "acme", scope, "entry query", vector=query)
        asked()  # builds the matrix
        seconds = timed(asked, lookups)
        found = asked()
        assert found is not None and found.similarity > 0.999
        report(f"lookup, {size:,} entries, one guard", seconds)
        other_guard = partial(cache.lookup, "acme", scope, "a red mug in a kitchen")
        seconds = timed(other_guard, lookups)
        assert other_guard() is None
        report(f"lookup, {size:,} entries, new guard", seconds)
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=10)
    parser.add_argument("--hits", type=int, default=200)
    parser.add_argument("--lookups", type=int, default=200)
    parser.add_argument("--preset", default="lightning")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rc-bench-cache-") as tmp:
        exact_cache(Path(tmp), args.renders, args.hits, args.preset)
        semantic_cache(Path(tmp), args.lookups)


if __name__ == "__main__":
    main()
