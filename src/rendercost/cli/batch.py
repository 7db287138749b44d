"""`rendercost batch FILE.jsonl`: render every line of a file through the queue, resumably.

Each line is one render spec (see ``cli.batch_lines``). The lines are queued in the settings' database
(SQLite by default, PostgreSQL with ``RENDERCOST_DATABASE_URL``) and rendered by ``--workers`` worker
threads in this process, batched by the planner. Re-running the same file after an interruption renders
only what is missing. A line with a fixed seed that was rendered before (same weights and spec) is
answered by the exact-result cache instead of rendering, and what renders is stored there. Images are
copied to ``--out`` as ``<line:05d>-<index>.<ext>``.

Exit codes: 0 every line rendered; 1 at least one line failed (refused as bad input, or its render
failed for good) while the others ran; 2 nothing could run (file unreadable, bad settings, database
unreachable).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as ProgressBar
from rich.table import Table

from rendercost.artifacts.protocol import ArtifactStore
from rendercost.cli.batch_lines import BadLine, BatchLine, read_lines
from rendercost.cli.batch_run import BatchRun, enqueue_lines
from rendercost.cli.common import cli_errors, load_settings
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import ZERO, usd_text
from rendercost.domain.runner import Runner
from rendercost.domain.specs import OutputFormat
from rendercost.settings import Settings

if TYPE_CHECKING:
    from rendercost.execution.worker.loop import Worker

EXIT_SOME_FAILED = 1


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("batch")(batch)


def batch(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSON Lines file: one render spec per line.")],
    out: Annotated[Path | None, typer.Option("--out", help="Copy the images into this folder.")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker threads.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary object.")] = False,
) -> None:
    """Render every line of FILE; resumable. Exit 1 when any line failed, 2 when nothing could run."""
    settings = load_settings(ctx)
    with cli_errors():
        text = file.read_text(encoding="utf-8")
    lines, bad = read_lines(text.splitlines(), settings)
    err = Console(stderr=True)
    for line in bad:
        err.print(f"line {line.number}: {line.error}", markup=False, highlight=False)
    with cli_errors():
        outcome = run_batch(settings, lines, bad, out=out, workers=workers, console=err)
    if as_json:
        typer.echo(json.dumps(outcome.summary))
    else:
        _print_table(outcome.summary)
    for number, reason in outcome.failures:
        err.print(f"line {number}: {reason}", markup=False, highlight=False)
    if outcome.summary["failed"]:
        raise typer.Exit(EXIT_SOME_FAILED)


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch run ended with."""

    summary: dict[str, Any]  # the --json object (see ``_summary``)
    failures: list[tuple[int, str]]  # (line number, last error) of lines whose render failed for good


def run_batch(
    settings: Settings,
    lines: Sequence[BatchLine],
    bad: Sequence[BadLine],
    *,
    out: Path | None,
    workers: int,
    console: Console,
    runner_factory: Callable[[Settings], Runner] | None = None,
) -> BatchOutcome:
    """Queue ``lines`` (idempotently), render them with ``workers`` threads, copy the images to ``out``.

    ``runner_factory`` defaults to ``build_runner`` (the diffusers runner)."""
    # The execution package (torch, diffusers): imported only when a batch runs. Loads no weights.
    from rendercost.cli.local_queue import local_queue
    from rendercost.execution.models.catalog import SettingsModelCatalog
    from rendercost.execution.models.registry import ModelRegistry
    from rendercost.execution.worker.pricing import WorkerPricing
    from rendercost.execution.worker.setup import LockedRunner, build_runner, default_worker_id

    fingerprint = ModelRegistry(settings).fingerprint
    with local_queue(settings, SettingsModelCatalog(settings), fingerprint) as local:
        store, artifacts = local.store, local.artifacts
        pricing = WorkerPricing.from_settings(settings, storage_backend=artifacts.backend)
        jobs_by_line = enqueue_lines(local.admission, lines)
        run = BatchRun(store, jobs_by_line)
        base_id = default_worker_id()
        shared_runner: list[Runner] = []  # built on first use: nothing to load when all is done

        def make_worker(index: int) -> Worker:
            if not shared_runner:
                runner = (runner_factory or build_runner)(settings)
                shared_runner.append(LockedRunner(runner) if workers > 1 else runner)
            return local.worker(
                shared_runner[0], worker_id=f"{base_id}-t{index}", pricing=pricing, then=run.on_settled
            )

        with _progress_bar(console, run) as tick:
            run.run(make_worker, workers=workers, tick=tick)
        final = run.final_jobs()
    by_line = {number: final[job.id] for number, job in jobs_by_line.items()}
    if out is not None:
        _copy_images(artifacts, out, by_line)
    failures = [
        (number, job.last_error or str(job.state))
        for number, job in sorted(by_line.items())
        if job.state is not JobState.SUCCEEDED
    ]
    summary = _summary(final, by_line, bad, settings.max_batch_size, run.already_done)
    return BatchOutcome(summary, failures)


@contextmanager
def _progress_bar(console: Console, run: BatchRun) -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr (done / total, failed, ETA, USD so far); yields its refresh."""
    bar = ProgressBar(
        TextColumn("rendering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TimeRemainingColumn(),
        TextColumn("${task.fields[usd]}"),
        console=console,
    )
    task = bar.add_task("batch", total=run.progress.total, failed=0, usd="0")

    def tick() -> None:
        p = run.progress
        with p.lock:
            done, failed, cost = p.done, p.failed, p.cost
        bar.update(task, completed=done + failed, failed=failed, usd=f"{cost:.6f}")

    with bar:
        tick()
        yield tick
        tick()


def _copy_images(artifacts: ArtifactStore, out: Path, jobs: dict[int, Job]) -> None:
    """Each succeeded line's images as ``out/NNNNN-I.suffix``, read through the store (local or S3)."""
    out.mkdir(parents=True, exist_ok=True)
    for number, job in sorted(jobs.items()):
        for image in job.result.images if job.state is JobState.SUCCEEDED and job.result else ():
            suffix = OutputFormat.from_media_type(image.media_type).suffix
            (out / f"{number:05d}-{image.index}.{suffix}").write_bytes(artifacts.get(image.artifact_key))


def _summary(
    final: dict[str, Job], by_line: dict[int, Job], bad: Sequence[BadLine], max_batch: int, already_done: int
) -> dict[str, Any]:
    """Totals over the file: images delivered, failed lines, device time, cost, batch fill."""
    succeeded = [job for job in final.values() if job.state is JobState.SUCCEEDED]
    results = [job.result for job in succeeded if job.result is not None]
    images = [image for result in results for image in result.images]
    batch_sizes: dict[str, int] = {}
    for image in images:
        for line in image.receipt.lines:
            if line.batch_id:
                batch_sizes[line.batch_id] = line.batch_size
    cost = sum((result.cost for result in results), ZERO)
    answered = [result for result in results if result.answered_from_cache]  # no pipeline call: cached
    avoided = sum((result.cost_avoided for result in results), ZERO)
    failed_lines = len(bad) + sum(job.state is not JobState.SUCCEEDED for job in by_line.values())
    fill = sum(batch_sizes.values()) / len(batch_sizes) / max_batch if batch_sizes else 0.0
    return {
        "lines": len(by_line) + len(bad),
        "renders": len(images),
        "failed": failed_lines,
        "already_done": already_done,
        "from_cache": len(answered),
        "cost_avoided_usd": usd_text(avoided),
        "device_seconds": round(sum(image.receipt.device_seconds for image in images), 6),
        "cost_usd": usd_text(cost),
        "cost_per_render_usd": str((cost / len(images)).quantize(Decimal("1e-10"))) if images else "0",
        "batch_fill_ratio": round(fill, 4),
    }


def _print_table(summary: dict[str, Any]) -> None:
    table = Table(title="rendercost batch", show_header=False)
    for label, key in (
        ("lines", "lines"),
        ("renders (images)", "renders"),
        ("failed lines", "failed"),
        ("done before this run", "already_done"),
        ("answered from the cache", "from_cache"),
        ("cost avoided (USD)", "cost_avoided_usd"),
        ("device-seconds", "device_seconds"),
        ("cost (USD)", "cost_usd"),
        ("cost per render (USD)", "cost_per_render_usd"),
        ("batch fill ratio", "batch_fill_ratio"),
    ):
        table.add_row(label, str(summary[key]))
    Console(file=sys.stdout).print(table)
