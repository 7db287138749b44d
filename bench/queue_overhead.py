"""What the durable queue costs, measured side by side in one run.

1. Queue throughput: jobs/s through enqueue -> claim -> plan -> (no-op runner) -> price -> store the
   file -> settle (one transaction per job), on SQLite and on PostgreSQL. The no-op runner answers
   every plan at once with an 8x8 PNG, so only the queue, ledger and artifact path are timed.
   PostgreSQL is a throwaway server started the way the test fixtures start it (skipped, with a note,
   when ``initdb`` is not installed: ``make services``).
   Then the same queue on PostgreSQL with 1, 2, 4 and 8 worker processes side by side (``--processes``):
   the jobs are queued first, every process builds its worker and waits at a barrier, and the clock
   runs from the go signal until the queue is drained, so process start-up is not counted. Printed with
   the headroom against 35 jobs/s (a million images a night, one image per job).
2. End to end on the tiny model: ``rendercost batch``'s code path (``cli.batch.run_batch``: queue in
   SQLite, worker thread, planner, store, ledger, copy to --out) against a plain loop that calls the
   same runner directly, one line at a time, and writes each file. Both use one warmed-up runner; the
   database is migrated before the clock starts. Reported as images/s and the ratio batch / plain
   (goal >= 0.95). A second batch row with max_batch_size=1 isolates the queue's overhead from the
   gain of batching.

Usage: .venv/bin/python bench/queue_overhead.py [--jobs 200] [--lines 32] [--rounds 2] [--size 64]
       [--preset lightning] [--skip-e2e] [--processes 1,2,4,8] [--fleet-jobs 800]
Default run: about two minutes on 2 idle CPU cores (longer on a busy machine).
"""

from __future__ import annotations

import argparse
import glob
import io
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.batching.planner import BatchPlanner
from rendercost.cli.batch import run_batch
from rendercost.cli.batch_lines import read_lines
from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import migrate
from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.costs import Stage
from rendercost.domain.runner import Runner
from rendercost.domain.specs import OutputFormat, Priority, RenderRequest, RenderSpec
from rendercost.execution.worker.loop import Worker
from rendercost.execution.worker.pricing import WorkerPricing
from rendercost.execution.worker.setup import build_runner
from rendercost.ledger.billing import Biller
from rendercost.queue.sql_store import SqlJobStore
from rendercost.settings import Settings
from rendercost.testing.runner import FakeRunner, TimedRunner

# --- part 1: queue throughput ------------------------------------------------------------------------


def noop_runner() -> FakeRunner:
    """Answers every plan at once with a tiny PNG per item and a few microseconds per stage."""
    return FakeRunner(
        stage_seconds={Stage.DENOISE: 1e-6}, image_size=(8, 8), colour=lambda _spec: (10, 20, 30)
    )


def queue_throughput(url: str, jobs: int, workdir: Path) -> tuple[float, float, float]:
    """(enqueue jobs/s, claim-to-settle jobs/s, overall jobs/s) for ``jobs`` one-image jobs."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
        store = SqlJobStore(engine)
        worker = Worker(
            store,
            noop_runner(),
            LocalArtifactStore(workdir / f"artifacts-{uuid.uuid4().hex[:6]}"),
            BatchPlanner(max_batch_size=4, max_wait_ms=0),
            WorkerPricing.from_settings(Settings(data_dir=workdir)),
            biller=Biller(store),
            worker_id="bench",
        )
        spec = RenderSpec(prompt="queue bench", preset="lightning", width=64, height=64)
        start = time.perf_counter()
        for i in range(jobs):
            store.enqueue("bench", RenderRequest(replace(spec, seed=i), priority=Priority.BATCH))
        enqueued = time.perf_counter()
        stats = worker.run_burst()
        done = time.perf_counter()
        if stats.jobs_succeeded != jobs:
            raise RuntimeError(f"only {stats.jobs_succeeded} of {jobs} jobs succeeded")
        return jobs / (enqueued - start), jobs / (done - enqueued), jobs / (done - start)
    finally:
        engine.dispose()


NIGHTLY_JOBS_PER_S = 1_000_000 / (8 * 3600)  # a million images in an 8-hour night: about 35 jobs/s


def _fleet_worker(url: str, workdir: str, index: int, ready: Any, go: Any, done: Any) -> None:
    """One worker process: build everything, wait for the go signal, drain the queue, report."""
    engine = create_db_engine(url)
    try:
        store = SqlJobStore(engine)
        worker = Worker(
            store,
            noop_runner(),
            LocalArtifactStore(Path(workdir) / "fleet-artifacts"),
            BatchPlanner(max_batch_size=4, max_wait_ms=0),
            WorkerPricing.from_settings(Settings(data_dir=Path(workdir))),
            biller=Biller(store),
            worker_id=f"bench-{index}",
        )
        ready.wait()
        go.wait()
        done.put(worker.run_burst().jobs_succeeded)
    finally:
        engine.dispose()


def fleet_throughput(url: str, processes: int, jobs: int, workdir: Path) -> float:
    """Jobs/s from the go signal until ``processes`` worker processes have drained ``jobs`` jobs."""
    engine = create_db_engine(url)
    try:
        migrate(engine)
        store = SqlJobStore(engine)
        spec = RenderSpec(prompt=f"fleet bench {processes}", preset="lightning", width=64, height=64)
        for i in range(jobs):
            store.enqueue("bench", RenderRequest(replace(spec, seed=i), priority=Priority.BATCH))
    finally:
        engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    ready, go, done = ctx.Barrier(processes + 1), ctx.Event(), ctx.Queue()
    children = [
        ctx.Process(target=_fleet_worker, args=(url, str(workdir), i, ready, go, done))
        for i in range(processes)
    ]
    for child in children:
        child.start()
    ready.wait()
    start = time.perf_counter()
    go.set()
    succeeded = sum(done.get(timeout=600) for _ in children)
    elapsed = time.perf_counter() - start
    for child in children:
        child.join()
    if succeeded != jobs:
        raise RuntimeError(f"only {succeeded} of {jobs} jobs succeeded with {processes} processes")
    return jobs / elapsed


def fleet_table(url: str, counts: list[int], jobs: int, workdir: Path) -> None:
    print(f"\nQueue throughput on PostgreSQL by worker processes, {jobs} one-image jobs, no-op runner")
    print(f"{'processes':<12}{'jobs/s':>10}{'vs 1':>8}{'headroom vs 35 jobs/s':>24}")
    base: float | None = None
    for count in counts:
        rate = fleet_throughput(url, count, jobs, workdir)
        base = base or rate
        print(f"{count:<12}{rate:>10.1f}{rate / base:>8.2f}{rate / NIGHTLY_JOBS_PER_S:>23.1f}x")
    print(f"(cores on this machine: {os.cpu_count()}; workers, PostgreSQL and this script share them)")


@contextmanager
def throwaway_postgres() -> Iterator[str | None]:
    """A PostgreSQL server on a free loopback port (as tests/fixtures/databases.py starts one), or None
    when PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        yield None
        return
    pg_bin = Path(found[-1]).parent
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    pgdir = Path(tempfile.mkdtemp(prefix="rendercost-bench-pg-"))  # outside workdir: postgres must enter it
    if os.geteuid() == 0:
        shutil.chown(pgdir, user="postgres", group="postgres")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = pgdir / "pg"
    subprocess.run(
        [*as_pg, str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {pgdir} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*as_pg, str(pg_bin / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-l", str(pgdir / "log"), "-w", "start"], check=True, capture_output=True
    )
    try:
        admin = create_db_engine(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            isolation_level="AUTOCOMMIT",
            poolclass=NullPool,
        )
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        admin.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}/bench"
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(pgdir, ignore_errors=True)


# --- part 2: end to end on the tiny model -------------------------------------------------------------


def batch_lines(count: int, size: int, preset: str) -> list[str]:
    return [
        f'{{"prompt": "bench line {i}", "preset": "{preset}", "size": "{size}x{size}", "seed": {i}}}'
        for i in range(count)
    ]


@dataclass(frozen=True)
class Measured:
    """One timed pass over the lines."""

    images: int
    wall_s: float  # whole pass
    runner_s: float  # inside runner.run

    @property
    def rate(self) -> float:
        return self.images / self.wall_s

    @property
    def overhead_ms(self) -> float:
        """Wall time outside the runner, per image: what the path adds to rendering."""
        return 1000 * (self.wall_s - self.runner_s) / self.images


def plain_loop(runner: Runner, settings: Settings, lines: list[str], out: Path) -> Measured:
    """A loop that renders each line with one runner call and writes the files. It runs in a thread,
    as the batch path's worker does: torch's CPU threads behave differently on the main thread (on a
    busy 2-core machine it was several times slower there), and that is not the queue."""
    measured: list[Measured] = []
    thread = threading.Thread(target=lambda: measured.append(_plain_loop(runner, settings, lines, out)))
    thread.start()
    thread.join()
    if not measured:
        raise RuntimeError("the plain loop failed")
    return measured[0]


def _plain_loop(runner: Runner, settings: Settings, lines: list[str], out: Path) -> Measured:
    requests = [line.request for line in read_lines(lines, settings)[0]]
    out.mkdir(parents=True, exist_ok=True)
    timed = TimedRunner(runner)
    images = 0
    start = time.perf_counter()
    for number, request in enumerate(requests, start=1):
        items = tuple(BatchItem("", i, spec) for i, spec in enumerate(request.image_specs()))
        result = timed.run(BatchPlan(uuid.uuid4().hex, items))
        for image in result.images:
            suffix = OutputFormat.from_media_type(image.media_type).suffix
            (out / f"{number:05d}-{image.item.image_index}.{suffix}").write_bytes(image.data)
            images += 1
    return Measured(images, time.perf_counter() - start, timed.seconds)


def batch_path(runner: Runner, settings: Settings, lines: list[str], out: Path) -> tuple[Measured, float]:
    """``rendercost batch``'s code path on a migrated SQLite database, and its batch fill ratio."""
    good, bad = read_lines(lines, settings)
    migrate(settings.resolved_database_url)
    quiet = Console(file=io.StringIO())
    timed = TimedRunner(runner)
    start = time.perf_counter()
    outcome = run_batch(
        settings, good, bad, out=out, workers=1, console=quiet, runner_factory=lambda _s: timed
    )
    elapsed = time.perf_counter() - start
    if outcome.summary["failed"]:
        raise RuntimeError(f"batch run failed: {outcome.failures}")
    return Measured(outcome.summary["renders"], elapsed, timed.seconds), outcome.summary["batch_fill_ratio"]


def end_to_end(args: argparse.Namespace, workdir: Path) -> None:
    """Interleaved rounds of the three paths on one warmed runner; the fastest round of each is kept,
    the figure least disturbed by other load on the machine."""
    base = Settings(data_dir=workdir / "data", min_side=64, max_wait_ms=args.max_wait_ms)
    runner = build_runner(base)
    lines = batch_lines(args.lines, args.size, args.preset)
    plain_loop(runner, base, lines[:2], workdir / "warmup")  # load the model, first-call costs
    best: dict[str, Measured] = {}
    fill = 0.0
    for round_ in range(args.rounds):
        runs = {"plain": plain_loop(runner, base, lines, workdir / f"plain-{round_}")}
        for name, max_batch in (("b4", 4), ("b1", 1)):
            settings = replace_db(base, workdir, f"{name}-{round_}", max_batch)
            runs[name], fill_now = batch_path(runner, settings, lines, workdir / f"out-{name}-{round_}")
            fill = fill_now if name == "b4" else fill
        for name, measured in runs.items():
            if name not in best or measured.rate > best[name].rate:
                best[name] = measured
    plain = best["plain"].rate
    size = f"{args.size}x{args.size}"
    print(
        f"\nEnd to end, tiny model, {args.lines} lines of 1 image, {size}, preset {args.preset}, "
        f"fastest of {args.rounds} interleaved rounds"
    )
    print(f"{'path':<40}{'images/s':>10}{'ratio':>8}{'in runner':>11}{'overhead/img':>14}")
    rows = (
        ("plain loop (runner.run per line)", best["plain"], ""),
        ("rendercost batch (max_batch_size=4)", best["b4"], f"  fill {fill:.2f}"),
        ("rendercost batch (max_batch_size=1)", best["b1"], ""),
    )
    for label, m, note in rows:
        busy = m.runner_s / m.wall_s
        print(f"{label:<40}{m.rate:>10.2f}{m.rate / plain:>8.3f}{busy:>10.1%}{m.overhead_ms:>11.1f} ms{note}")
    print("goal: ratio >= 0.95 (the queue, ledger and storage cost under 5% of the render)")


def replace_db(settings: Settings, workdir: Path, name: str, max_batch_size: int) -> Settings:
    """``settings`` on a fresh SQLite database and artifact folder named ``name``."""
    return settings.model_copy(
        update={
            "database_url": f"sqlite:///{workdir / name}.db",
            "artifacts_dir": workdir / f"artifacts-{name}",
            "max_batch_size": max_batch_size,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200, help="jobs per engine in the queue benchmark")
    parser.add_argument("--lines", type=int, default=32, help="lines in the end-to-end benchmark")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (multiple of 8)")
    parser.add_argument("--preset", default="lightning")
    parser.add_argument("--max-wait-ms", type=int, default=100)
    parser.add_argument(
        "--rounds", type=int, default=2, help="interleaved rounds; the best of each path is kept"
    )
    parser.add_argument("--skip-e2e", action="store_true", help="only the queue benchmark")
    parser.add_argument(
        "--processes", default="1,2,4,8", help="worker process counts on PostgreSQL ('' skips them)"
    )
    parser.add_argument("--fleet-jobs", type=int, default=800, help="jobs per process count")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="rendercost-bench-"))
    try:
        print(f"Queue throughput, {args.jobs} one-image jobs, no-op runner, max_batch_size=4")
        print(f"{'engine':<12}{'enqueue/s':>12}{'settle/s':>12}{'overall/s':>12}")
        rows: list[tuple[str, str | None]] = [("sqlite", f"sqlite:///{workdir / 'queue.db'}")]
        with throwaway_postgres() as pg_url:
            rows.append(("postgresql", pg_url))
            for name, url in rows:
                if url is None:
                    print(f"{name:<12}  skipped: PostgreSQL is not installed (make services)")
                    continue
                enqueue, settle, overall = queue_throughput(url, args.jobs, workdir)
                print(f"{name:<12}{enqueue:>12.1f}{settle:>12.1f}{overall:>12.1f}")
            if pg_url is not None and args.processes:
                counts = [int(part) for part in args.processes.split(",")]
                fleet_table(pg_url, counts, args.fleet_jobs, workdir)
        if not args.skip_e2e:
            end_to_end(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
