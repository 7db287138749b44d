"""A soak under faults: a real server on PostgreSQL under concurrent clients, killed and restarted.

``rendercost serve`` (a child process, in-process workers, the tiny model at 64 px) runs on a
throwaway PostgreSQL; ``--clients`` threads (httpx) mix sync renders, async jobs, repeats (cache hits),
cancels, requests of a tenant over its budget and hostile bodies for ``--minutes``
(``bench/soak_clients.py``). Mid-run the server is SIGKILLed and restarted twice (at 30% and 80% of the
run) and PostgreSQL is crashed and restarted once (at 55%), each fault no sooner than the previous
one's window closed. Each fault's restart window runs from the fault until the server (or database) is
back plus ``GRACE_S``; the load goes on ``AFTER_FAULTS_S`` past the last window, so a slow restart makes
a short run longer, never faultless. After the clients stop, the queue drains and the database is
audited (``bench/soak_audit.py``).

It prints requests by outcome, jobs by state, and the invariants, and exits 1 when one fails:
0 jobs lost, 0 billed twice, ledger lines = receipt lines, nothing billed for an unfinished job,
ledger total = receipts total (and = what clients were quoted), 0 5xx and 0 transport errors outside
the restart windows, 0 hostile bodies accepted, 0 jobs another tenant could read, and the server's RSS
growing at most ``--rss-growth-mib`` in each of its runs (first sample ``WARM_S`` after it was ready,
under load, to its last sample).
Also p50/p99 latency of cache hits and of renders under load.

Bounded: ``--minutes`` of load (plus what restarts take past the schedule; each start gives up after
``READY_TIMEOUT_S``), at most ``--max-requests`` calls, ``--drain-s`` to drain; loopback only.

Usage: .venv/bin/python bench/soak.py [--minutes 10] [--clients 16] [--workers 2] [--model-dir DIR]
       [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from rendercost.db.engine import create_db_engine
from soak_audit import Audit, audit, drain
from soak_clients import Call, Client, Tally, client_loop
from soak_services import Postgres, Server, _free_port, create_key, write_config

FAULTS = (("kill", 0.30), ("postgres", 0.55), ("kill", 0.80))  # (what, when as a fraction of the run)
GRACE_S = 5.0  # a restart window stays open this long after the server (or database) is back
PG_DOWN_S = 3.0  # how long PostgreSQL stays down
WARM_S = 10.0  # a server run's first RSS sample is taken this long after it was ready
RSS_EVERY_S = 2.0
AFTER_FAULTS_S = 10.0  # load goes on at least this long after the last restart window closed


@dataclass(frozen=True)
class Window:
    kind: str
    start: float  # time.monotonic()
    end: float


@dataclass
class Faults:
    """The fault thread's record: restart windows and the server's RSS samples per run."""

    windows: list[Window] = field(default_factory=list)
    rss: list[list[tuple[float, int]]] = field(default_factory=lambda: [[]])  # per server run
    ready_at: list[float] = field(default_factory=list)

    @property
    def last_end(self) -> float:
        return self.windows[-1].end if self.windows else 0.0

    def covers(self, call: Call) -> bool:
        return any(call.started <= w.end and call.ended >= w.start for w in self.windows)


def run_faults(server: Server, pg: Postgres, faults: Faults, start: float, deadline: float) -> None:
    """Inject FAULTS on schedule (each one no sooner than the previous one's window closed) and sample
    the server's RSS; return once ``deadline`` has passed and the clients have had ``AFTER_FAULTS_S``
    of load since the last window closed (a slow restart makes a short run longer, never faultless)."""
    pending = [(start + frac * (deadline - start), kind) for kind, frac in FAULTS]
    while pending or time.monotonic() < max(deadline, faults.last_end + AFTER_FAULTS_S):
        if pending and time.monotonic() >= max(pending[0][0], faults.last_end):
            faults.windows.append(_inject(pending.pop(0)[1], server, pg, faults))
        _sample_rss(server, faults)
        time.sleep(RSS_EVERY_S)


def _inject(kind: str, server: Server, pg: Postgres, faults: Faults) -> Window:
    began = time.monotonic()
    if kind == "kill":
        server.kill()
        faults.rss.append([])
        faults.ready_at.append(server.start())
        back = faults.ready_at[-1]
    else:
        pg.crash()
        time.sleep(PG_DOWN_S)
        pg.start()
        back = time.monotonic()
    return Window(kind, began, back + GRACE_S)


def _sample_rss(server: Server, faults: Faults) -> None:
    rss = server.rss_bytes()
    if rss is not None and time.monotonic() >= faults.ready_at[-1] + WARM_S:
        faults.rss[-1].append((time.monotonic(), rss))


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def setup_keys(server: Server, config: Path, data_dir: Path) -> dict[str, str]:
    """Keys for tenants soak-a, soak-b and poor; poor gets a budget it passes with its first render."""
    keys = {tenant: create_key(config, tenant) for tenant in ("soak-a", "soak-b", "poor")}
    admin = (data_dir / "admin-key").read_text().strip()
    budget = httpx.put(
        f"{server.url}/v1/budgets/poor",
        json={"amount_usd": "0.0000001", "period": "day"},
        headers={"Authorization": f"Bearer {admin}"},
        timeout=30,
    )
    budget.raise_for_status()
    warm = httpx.post(  # the first render loads the pipeline; outside the measured run
        f"{server.url}/v1/images/generations",
        json={"prompt": "a warm-up lamp", "preset": "lightning", "size": "64x64", "seed": 0},
        headers={"Authorization": f"Bearer {keys['soak-a']}"},
        timeout=600,
    )
    warm.raise_for_status()
    return keys


def load(
    server: Server, pg: Postgres, keys: dict[str, str], args: argparse.Namespace
) -> tuple[Tally, Faults]:
    tally, faults = Tally(), Faults(ready_at=[time.monotonic() - WARM_S])
    start = time.monotonic()
    deadline = start + args.minutes * 60
    stop = threading.Event()

    def go_on() -> bool:
        return not stop.is_set() and len(tally.calls) < args.max_requests

    threads = [
        threading.Thread(
            target=client_loop,
            args=(
                Client(server.url, keys, tally, random.Random(args.seed * 1000 + i)),
                go_on,
            ),
            name=f"client-{i}",
        )
        for i in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    try:
        run_faults(server, pg, faults, start, deadline)
    finally:
        stop.set()
    for thread in threads:
        thread.join()
    return tally, faults


def summarize(
    tally: Tally, faults: Faults, result: Audit, args: argparse.Namespace, drained_s: float
) -> dict[str, Any]:
    t0 = min((c.started for c in tally.calls), default=0.0)
    outside = [c for c in tally.calls if not faults.covers(c)]
    rss_runs = [(run[0][1], run[-1][1]) for run in faults.rss if run]
    ms = {k: [v * 1000 for v in values] for k, values in tally.latency.items()}
    return {
        "minutes": args.minutes,
        "clients": args.clients,
        "workers": args.workers,
        "windows": [{"kind": w.kind, "from_s": w.start - t0, "to_s": w.end - t0} for w in faults.windows],
        "outcomes": dict(sorted(tally.outcomes().items())),
        "jobs": {"submitted": sum(result.states.values()), **dict(result.states)},
        "drained_s": drained_s,
        "lost": result.lost,
        "billed_twice": result.billed_twice,
        "receipt_mismatch": result.receipt_mismatch,
        "billed_unfinished": result.billed_unfinished,
        "ledger_total": str(result.ledger_total),
        "receipts_total": str(result.receipts_total),
        "quoted_total": str(result.quoted_total),
        "ledger_of_quoted": str(result.ledger_of_quoted),
        "answer_lines_total": str(result.answer_lines_total),
        "5xx_outside": sum(c.status >= 500 for c in outside),
        "5xx_inside": sum(c.status >= 500 for c in tally.calls) - sum(c.status >= 500 for c in outside),
        "transport_outside": sum(c.status == 0 for c in outside),
        "transport_inside": sum(c.status == 0 for c in tally.calls) - sum(c.status == 0 for c in outside),
        "latency_ms": {
            kind: {"n": len(v), "p50": percentile(v, 0.5), "p99": percentile(v, 0.99)}
            for kind, v in ms.items()
        },
        "rss_mib": [[start / 2**20, end / 2**20] for start, end in rss_runs],
        "rss_growth_bound_mib": args.rss_growth_mib,
        "notes": dict(tally.notes),
    }


def invariants(report: dict[str, Any]) -> list[tuple[str, bool]]:
    hostile = sum(n for note, n in report["notes"].items() if note.startswith("HOSTILE ACCEPTED"))
    leaks = sum(n for note, n in report["notes"].items() if note.startswith("TENANT LEAK"))
    growth = [end - start for start, end in report["rss_mib"]]
    return [
        (f"jobs lost: {len(report['lost'])}", not report["lost"]),
        (f"jobs billed twice: {len(report['billed_twice'])}", not report["billed_twice"]),
        (
            f"ledger lines != receipt lines: {len(report['receipt_mismatch'])} jobs",
            not report["receipt_mismatch"],
        ),
        (
            f"billed but not succeeded: {len(report['billed_unfinished'])} jobs",
            not report["billed_unfinished"],
        ),
        (
            f"ledger total ${report['ledger_total']} vs receipts total ${report['receipts_total']}",
            report["ledger_total"] == report["receipts_total"],
        ),
        (
            f"quoted to clients ${report['quoted_total']} "
            f"vs ledger for those jobs ${report['ledger_of_quoted']}",
            report["quoted_total"] == report["ledger_of_quoted"],
        ),
        (
            f"5xx outside restart windows: {report['5xx_outside']} ({report['5xx_inside']} inside)",
            report["5xx_outside"] == 0,
        ),
        (
            f"transport errors outside restart windows: {report['transport_outside']} "
            f"({report['transport_inside']} inside)",
            report["transport_outside"] == 0,
        ),
        (f"hostile bodies accepted: {hostile}", hostile == 0),
        (f"jobs another tenant could read: {leaks}", leaks == 0),
        (
            "server RSS growth per run (MiB): "
            + ", ".join(f"{g:+.0f}" for g in growth)
            + f" (bound +{report['rss_growth_bound_mib']})",
            bool(growth) and max(growth) <= report["rss_growth_bound_mib"],
        ),
    ]


def print_report(report: dict[str, Any], checks: list[tuple[str, bool]]) -> None:
    print(
        f"rendercost soak: {report['minutes']} min, {report['clients']} clients, {report['workers']} workers"
    )
    print(
        "restart windows (s from start): "
        + ", ".join(f"{w['kind']} {w['from_s']:.0f}-{w['to_s']:.0f}" for w in report["windows"])
    )
    print("requests by outcome:")
    for outcome, count in report["outcomes"].items():
        print(f"  {outcome:<32} {count:>7}")
    jobs = report["jobs"]
    print(
        "jobs: "
        + "  ".join(f"{k} {v}" for k, v in jobs.items())
        + f"  (drained in {report['drained_s']:.1f} s)"
    )
    for kind, stats in report["latency_ms"].items():
        if stats["n"]:
            print(f"latency {kind}: p50 {stats['p50']:.0f} ms  p99 {stats['p99']:.0f} ms  (n={stats['n']})")
    runs = ", ".join(f"{s:.0f}->{e:.0f}" for s, e in report["rss_mib"])
    print(f"server RSS per run, MiB (first sample {WARM_S:.0f} s after ready -> last): {runs}")
    for note, count in report["notes"].items():
        print(f"note: {note}: {count}")
    for text, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {text}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long the clients run")
    parser.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    parser.add_argument("--workers", type=int, default=2, help="in-process workers of the server")
    parser.add_argument(
        "--max-requests", type=int, default=500_000, help="stop the clients after this many calls"
    )
    parser.add_argument("--drain-s", type=float, default=300.0, help="how long the queue may take to drain")
    parser.add_argument(
        "--rss-growth-mib", type=float, default=128.0, help="RSS growth allowed per server run"
    )
    parser.add_argument("--seed", type=int, default=16, help="seeds the clients' choices")
    parser.add_argument("--model-dir", type=Path, default=None, help="a built tiny model (else built here)")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, files)")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="rendercost-soak-"))
    pg = Postgres()
    try:
        return soak(args, workdir, pg)
    finally:
        pg.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work folder kept: {workdir}")


def soak(args: argparse.Namespace, workdir: Path, pg: Postgres) -> int:
    model_dir = args.model_dir or build_model(workdir / "tiny-sdxl")
    pg.start()
    port, data_dir = _free_port(), workdir / "data"
    config = write_config(
        workdir / "rendercost.toml", data_dir=data_dir, model_dir=model_dir, database_url=pg.url, port=port
    )
    server = Server(config, port, workdir / "server.log", workers=args.workers)
    server.start()
    try:
        keys = setup_keys(server, config, data_dir)
        tally, faults = load(server, pg, keys, args)
        engine = create_db_engine(pg.url)
        drained_s = drain(engine, args.drain_s)
        _sample_rss(server, faults)
    finally:
        server.stop()
    try:
        result = audit(engine, tally)
    finally:
        engine.dispose()
    report = summarize(tally, faults, result, args, drained_s)
    checks = invariants(report)
    print_report(report, checks)
    if args.json is not None:
        args.json.write_text(json.dumps({**report, "checks": [[t, ok] for t, ok in checks]}, indent=2))
    return 0 if all(ok for _, ok in checks) else 1


def build_model(path: Path) -> Path:
    import torch

    from rendercost.execution.models.tiny_model import build_tiny_model

    torch.set_num_threads(1)
    build_tiny_model(path)
    return path


if __name__ == "__main__":
    sys.exit(main())
