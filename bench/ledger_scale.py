"""Admission, the cost report and the FOCUS export against the size of the ledger, side by side in one run.

Each size (default 10,000 and 1,000,000 cost lines) gets its own database, seeded by bulk insert: jobs of
6 lines each (text_encode, denoise, decode, postprocess, storage, one prompt_rewrite on every third),
20 tenants, three presets of the default model, spread over the current UTC calendar month, with one
succeeded ``jobs`` row per job; then the spend rollup is rebuilt from the ledger
(``ledger.rollup.rebuild``, what migration 0007 does to an existing ledger). Then, the sizes interleaved
round by round:

1. admission: ``Admission.admit`` in-process, the whole front door (route, exact-cache lookup, the
   estimate from recent lines, budget reserve against a tenant and a global monthly budget, enqueue),
   p50 / p99 in ms; beside it the budget check alone (``BudgetStore.reserve`` + ``release``) and what that
   check cost before the rollup (the two exact ``SUM`` queries over the period's ledger lines).
2. ``GET /v1/costs?by=tenant`` over the whole month, over real HTTP (uvicorn on loopback): seconds.
3. the FOCUS export of every line (``governance.focus.write_focus`` to a CSV file, the
   ``rendercost export focus`` path): seconds (goal at 1M lines: < 10 s).

Engine: ``--engine sqlite`` (a file in a temporary folder, the embedded default) or ``postgresql`` (a
throwaway server on loopback, started the way the test fixtures start one; needs ``initdb``).

Usage: .venv/bin/python bench/ledger_scale.py [--lines 10000,1000000] [--engine sqlite|postgresql]
       [--admissions 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Connection, Engine, insert, select, text
from sqlalchemy.pool import NullPool

from queue_overhead import throwaway_postgres  # type: ignore[import-not-found]  # bench/ is on sys.path
from rendercost.admission.ticket import Ticket
from rendercost.api.threaded_server import uvicorn_thread
from rendercost.cli.serve import EmbeddedServer, embedded_server
from rendercost.db.engine import create_db_engine
from rendercost.db.types import exact_sum
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.governance.budgets import period_bounds
from rendercost.governance.focus import write_focus
from rendercost.governance.periods import Period
from rendercost.governance.tables import GLOBAL_SCOPE
from rendercost.ledger import rollup
from rendercost.ledger.tables import cost_lines
from rendercost.queue.sql_store import SqlJobStore
from rendercost.queue.tables import jobs
from rendercost.settings import Settings
from rendercost.testing.runner import FakeRunner

TENANTS = tuple(f"tenant-{i:02d}" for i in range(20))
PRESETS = ("speed", "quality", "lightning")
STAGES = ("text_encode", "denoise", "decode", "postprocess", "storage")
CHUNK = 20_000  # rows per bulk insert
MEASURED_TENANT = TENANTS[0]


@dataclass
class Subject:
    """One seeded database and the server over it."""

    lines: int
    url: str
    server: EmbeddedServer
    base_url: str
    admin_key: str
    admission_ms: list[float]
    check_ms: list[float]
    sum_ms: list[float]
    report_s: list[float]


def line_rows(count: int, model: str, month: tuple[datetime, datetime]) -> Iterator[list[dict[str, Any]]]:
    """Exactly ``count`` cost lines (jobs of 5 or 6 lines), in chunks of ``CHUNK``; deterministic."""
    rng = random.Random(7)
    start, end = month
    span = (end - start).total_seconds()
    jobs_needed = count // 5 + 1  # at least enough: the last job may be cut short
    chunk: list[dict[str, Any]] = []
    made = 0
    for job in range(jobs_needed):
        if made == count:
            break
        created = start + timedelta(seconds=span * job / jobs_needed)
        tenant, preset = TENANTS[job % len(TENANTS)], PRESETS[job % len(PRESETS)]
        stages = [*STAGES, "prompt_rewrite"] if job % 3 == 0 else list(STAGES)
        for stage in stages:
            if made == count:
                break
            cost = Decimal(rng.randrange(1, 10**8)).scaleb(-10)
            chunk.append(
                {
                    "job_id": f"job_{job:09d}",
                    "image_index": 0,
                    "stage": stage,
                    "device_seconds": 0.5,
                    "unit_price": Decimal("0.8"),
                    "unit": "device-hour",
                    "quantity": Decimal("0.000138888888888889"),
                    "cost": cost,
                    "cost_avoided": Decimal(0),
                    "device_type": "L4",
                    "pricing_model": "on_demand",
                    "batch_id": f"b_{job // 4}",
                    "batch_size": 4,
                    "details": {},
                    "tenant": tenant,
                    "model": model,
                    "preset": preset,
                    "request_class": "interactive",
                    "tags": {"team": "bench"},
                    "created_at": created,
                }
            )
            made += 1
            if len(chunk) == CHUNK:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def seed(engine: Engine, count: int, model: str, month: tuple[datetime, datetime]) -> float:
    """Bulk-insert ``count`` lines, a succeeded job row per job, and rebuild the rollup; seconds taken."""
    began = time.perf_counter()
    template = SqlJobStore(engine).enqueue(MEASURED_TENANT, RenderRequest(spec=RenderSpec(prompt="template")))
    with engine.begin() as conn:
        row = dict(conn.execute(select(jobs).where(jobs.c.id == template.id)).mappings().one())
        conn.execute(jobs.delete())
        write = _sqlite_writer(conn) if conn.dialect.name == "sqlite" else _core_writer(conn)
        for chunk in line_rows(count, model, month):
            write(chunk, _job_rows(chunk, row))
        rollup.rebuild(conn, now=datetime.now(UTC))
    return time.perf_counter() - began


def _job_rows(chunk: list[dict[str, Any]], template: dict[str, Any]) -> list[dict[str, Any]]:
    """One succeeded job row per job of the chunk (a job cut by a chunk boundary: its first chunk)."""
    found: dict[str, dict[str, Any]] = {}
    for line in chunk:
        if line["job_id"] not in found and line["stage"] == STAGES[0]:
            finished = line["created_at"] + timedelta(seconds=3)
            found[line["job_id"]] = {
                **{k: v for k, v in template.items() if k != "seq"},
                "id": line["job_id"],
                "tenant": line["tenant"],
                "state": "succeeded",
                "created_at": line["created_at"],
                "updated_at": finished,
                "finished_at": finished,
            }
    return list(found.values())


def _core_writer(conn: Connection) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]:
    """SQLAlchemy Core executemany (PostgreSQL: batched multi-row INSERTs)."""

    def write(lines: list[dict[str, Any]], job_rows: list[dict[str, Any]]) -> None:
        conn.execute(insert(cost_lines), lines)
        conn.execute(insert(jobs), job_rows)

    return write


def _sqlite_writer(conn: Connection) -> Callable[[list[dict[str, Any]], list[dict[str, Any]]], None]:
    """The driver's executemany over values put in SQLite's storage form by the columns' own bind
    processors (what SQLAlchemy would bind), without its per-row statement overhead."""
    dialect = conn.dialect

    def prepare(table: Any, key: str) -> tuple[str, list[str], list[Any]]:
        names = [c.name for c in table.c if c.name != key]  # the autoincrement key numbers itself
        processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
        marks = ", ".join("?" for _ in names)
        insert = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})"  # noqa: S608  our own table and column names
        return insert, names, processors

    statements = [prepare(cost_lines, "id"), prepare(jobs, "seq")]

    def write(lines: list[dict[str, Any]], job_rows: list[dict[str, Any]]) -> None:
        for (sql, names, processors), rows in zip(statements, (lines, job_rows), strict=True):
            values = [
                tuple(p(row[n]) if p else row[n] for n, p in zip(names, processors, strict=True))
                for row in rows
            ]
            conn.exec_driver_sql(sql, values)  # type: ignore[arg-type]

    return write


def settings_for(workdir: Path, url: str) -> Settings:
    return Settings(
        data_dir=workdir,
        database_url=url,
        min_side=64,
        default_size="64x64",
        max_queue_depth=1_000_000,
        rate_limit_key_requests_per_minute=0,
        rate_limit_tenant_requests_per_minute=0,
        rate_limit_key_images_per_minute=0,
        rate_limit_tenant_images_per_minute=0,
    )


def timed_ms(call: Callable[[], object]) -> float:
    began = time.perf_counter()
    call()
    return (time.perf_counter() - began) * 1000


def old_budget_sums(engine: Engine, month: tuple[datetime, datetime]) -> None:
    """What the budget check read before the rollup: the period's ledger summed, tenant and global."""
    start, end = month
    window = (cost_lines.c.created_at >= start, cost_lines.c.created_at < end)
    with engine.connect() as conn:
        conn.execute(select(exact_sum(cost_lines.c.cost)).where(*window)).scalar_one()
        conn.execute(
            select(exact_sum(cost_lines.c.cost)).where(*window, cost_lines.c.tenant == MEASURED_TENANT)
        ).scalar_one()


def measure_round(subject: Subject, admissions: int, month: tuple[datetime, datetime]) -> None:
    svc = subject.server.services
    model = subject.server.settings.default_model
    budgets = svc.governance.budgets if svc.governance else None
    assert budgets is not None
    rng = random.Random(subject.lines)
    for i in range(admissions):
        spec = RenderSpec(prompt="a lighthouse", model=model, preset=PRESETS[i % 3], width=64, height=64)
        ticket = Ticket(MEASURED_TENANT, RenderRequest(spec=spec, n=1))
        began = time.perf_counter()
        admitted = svc.admission.admit(ticket)
        subject.admission_ms.append((time.perf_counter() - began) * 1000)
        assert admitted.job is not None
        svc.store.cancel(admitted.job.id)  # untimed: its reservation settles at the next admission
        amount = Decimal(rng.randrange(1, 1000)).scaleb(-8)
        subject.check_ms.append(
            timed_ms(lambda a=amount: budgets.release(budgets.reserve(MEASURED_TENANT, a)))
        )  # type: ignore[misc]
        subject.sum_ms.append(timed_ms(lambda: old_budget_sums(subject.server.engine, month)))
    start, end = month
    params = {"by": "tenant", "since": start.isoformat(), "until": end.isoformat()}
    with httpx.Client(base_url=subject.base_url, timeout=600) as client:
        began = time.perf_counter()
        response = client.get("/v1/costs", params=params, headers={"X-API-Key": subject.admin_key})
        subject.report_s.append(time.perf_counter() - began)
        response.raise_for_status()


def pct(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def focus_seconds(subject: Subject, workdir: Path) -> tuple[float, int, float]:
    """Wall seconds, rows and CPU seconds of this process (SQLite runs in it) for the whole export."""
    out = workdir / f"focus-{subject.lines}.csv"
    began, cpu = time.perf_counter(), time.process_time()
    result = write_focus(subject.server.engine, out)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    out.unlink()
    return seconds, result.rows, cpu


@contextmanager
def engine_urls(engine_name: str, sizes: list[int], workdir: Path) -> Iterator[list[str]]:
    if engine_name == "sqlite":
        yield [f"sqlite:///{workdir / f'ledger-{n}.db'}" for n in sizes]
        return
    with throwaway_postgres() as base:
        if base is None:
            sys.exit("PostgreSQL is not installed (make services): run with --engine sqlite")
        server = base.rsplit("/", 1)[0]
        admin = create_db_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            for n in sizes:
                conn.execute(text(f"CREATE DATABASE ledger_{n}"))
        admin.dispose()
        yield [f"{server}/ledger_{n}" for n in sizes]


def report(subjects: list[Subject], focus: dict[int, tuple[float, int, float]], engine_name: str) -> None:
    print(f"\nengine: {engine_name}; admissions per size: {len(subjects[0].admission_ms)}")
    header = f"{'lines':>10} {'admit p50':>10} {'admit p99':>10} {'check p50':>10} {'check p99':>10}"
    header += f" {'SUM p50':>9} {'SUM p99':>9} {'/v1/costs s':>12} {'FOCUS s':>8}"
    print(header)
    for s in subjects:
        print(
            f"{s.lines:>10,} {pct(s.admission_ms, 0.5):>10.2f} {pct(s.admission_ms, 0.99):>10.2f}"
            f" {pct(s.check_ms, 0.5):>10.2f} {pct(s.check_ms, 0.99):>10.2f}"
            f" {pct(s.sum_ms, 0.5):>9.2f} {pct(s.sum_ms, 0.99):>9.2f}"
            f" {statistics.median(s.report_s):>12.2f} {focus[s.lines][0]:>8.2f}"
        )
    small, large = subjects[0], subjects[-1]
    print(
        f"ratio {large.lines:,} / {small.lines:,} lines: admission p99 "
        f"{pct(large.admission_ms, 0.99) / pct(small.admission_ms, 0.99):.2f}x (goal <= 1.5x), "
        f"budget check p99 {pct(large.check_ms, 0.99) / pct(small.check_ms, 0.99):.2f}x, "
        f"ledger SUM p99 (before the rollup) {pct(large.sum_ms, 0.99) / pct(small.sum_ms, 0.99):.2f}x, "
        f"GET /v1/costs {statistics.median(large.report_s) / statistics.median(small.report_s):.1f}x"
    )
    seconds, rows, cpu = focus[large.lines]
    print(
        f"FOCUS export of {rows:,} lines: {seconds:.2f} s wall, {cpu:.2f} s CPU in this process (goal < 10 s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", default="10000,1000000", help="ledger sizes, comma-separated")
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--admissions", type=int, default=100, help="admissions per size and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the sizes interleaved")
    args = parser.parse_args(argv)
    sizes = sorted(int(n) for n in args.lines.split(","))
    workdir = Path(tempfile.mkdtemp(prefix="rendercost-ledger-scale-"))
    month = period_bounds(Period.MONTH, datetime.now(UTC))
    try:
        with ExitStack() as stack:
            urls = stack.enter_context(engine_urls(args.engine, sizes, workdir))
            subjects = []
            for n, url in zip(sizes, urls, strict=True):
                settings = settings_for(workdir / f"data-{n}", url)
                catalog = SettingsModelCatalog(settings)
                server = stack.enter_context(
                    embedded_server(settings, workers=0, runner=FakeRunner(), catalog=catalog, webhooks=False)
                )
                assert server.admin_key is not None and server.services.governance is not None
                seconds = seed(server.engine, n, settings.default_model, month)
                print(f"seeded {n:,} lines in {seconds:.1f} s ({args.engine})")
                server.services.governance.budgets.set(MEASURED_TENANT, "1000000", "month")
                server.services.governance.budgets.set(GLOBAL_SCOPE, "1000000", "month")
                base_url = stack.enter_context(uvicorn_thread(server.app))
                subjects.append(Subject(n, url, server, base_url, server.admin_key.secret, [], [], [], []))
            for _ in range(args.rounds):
                for subject in subjects:
                    measure_round(subject, args.admissions, month)
            focus = {s.lines: focus_seconds(s, workdir) for s in subjects}
            report(subjects, focus, args.engine)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
