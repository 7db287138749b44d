"""`rendercost plan`: replay the ledger's history (or a workload file) through what-if fleets.

The as-is scenario is always first; add one scenario from the flags (``--device l4 --pricing spot
--route draft=lightning --caches``) and/or many from ``--scenarios FILE.toml``. Output: a table (with a
progress bar on a terminal), ``--json`` (the same document as ``POST /v1/plan``) or ``--csv``.
The planner's modules (numpy, SQL) are imported inside the command so ``rendercost --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rendercost.cli.common import cli_errors, fail, load_settings

if TYPE_CHECKING:
    from rendercost.capacity.plan import PlanContext, PlanReport
    from rendercost.capacity.scenario import Scenario

DEFAULT_WINDOW = timedelta(days=30)  # history replayed without --since

Opt = typer.Option


def register(app: typer.Typer) -> None:
    """Add ``plan`` to ``app``."""
    app.command("plan")(plan)


def plan(
    ctx: typer.Context,
    since: Annotated[
        str | None, Opt("--since", help="History start, ISO 8601 UTC (default: 30 days ago).")
    ] = None,
    until: Annotated[str | None, Opt("--until", help="History end, ISO 8601 UTC (default: now).")] = None,
    workload: Annotated[Path | None, Opt("--workload", help="JSONL arrivals to replay instead.")] = None,
    scenarios: Annotated[
        Path | None, Opt("--scenarios", help="TOML file, one scenario table per what-if (README: Plan).")
    ] = None,
    name: Annotated[str, Opt("--name", help="Name of the scenario the flags describe.")] = "what-if",
    device: Annotated[str | None, Opt("--device", help="Catalog device type, e.g. l4.")] = None,
    pricing: Annotated[
        str | None, Opt("--pricing", help="on_demand, spot, reserved, serverless or commitment.")
    ] = None,
    region: Annotated[str | None, Opt("--region", help="Catalog region.")] = None,
    workers: Annotated[int | None, Opt("--workers", help="Fixed fleet size.")] = None,
    autoscale: Annotated[
        str | None, Opt("--autoscale", help="MIN:MAX workers, scaled on queue depth.")
    ] = None,
    max_batch: Annotated[int | None, Opt("--max-batch", help="Images per pipeline call.")] = None,
    max_wait_ms: Annotated[int | None, Opt("--max-wait-ms", help="Batching wait.")] = None,
    route: Annotated[list[str] | None, Opt("--route", help="CLASS=PRESET, e.g. draft=lightning.")] = None,
    caches: Annotated[bool | None, Opt("--caches/--no-caches", help="Model cache hits from repeats.")] = None,
    serverless: Annotated[
        str | None, Opt("--serverless", help="Serverless offer, e.g. runpod-flex-24gb.")
    ] = None,
    latency_goal: Annotated[float | None, Opt("--latency-goal", help="p95 queue wait goal, seconds.")] = None,
    commit: Annotated[str | None, Opt("--commit-usd-per-hour", help="Savings-plan commitment.")] = None,
    upfront: Annotated[str | None, Opt("--upfront", help="Commitment paid upfront, USD.")] = None,
    history_workers: Annotated[
        int | None,
        Opt(
            "--history-workers",
            min=1,
            max=1024,
            help="Devices the history ran on (default: those in the ledger).",
        ),
    ] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the plan as JSON.")] = False,
    as_csv: Annotated[bool, Opt("--csv", help="Print one CSV row per scenario.")] = False,
) -> None:
    """What the history would cost on other devices, pricing, fleets, routing and caches."""
    flags: dict[str, Any] = {
        "device": device, "pricing": pricing, "region": region, "workers": workers, "max_batch": max_batch,
        "max_wait_ms": max_wait_ms, "caches": caches, "serverless": serverless,
        "latency_goal_s": latency_goal, "commit_usd_per_hour": commit, "commit_upfront": upfront,
    }  # fmt: skip
    if as_json and as_csv:
        fail("--json and --csv exclude each other")
    end = _time(until, "--until") or datetime.now(UTC)
    start = _time(since, "--since") or end - DEFAULT_WINDOW
    settings = load_settings(ctx)
    with cli_errors():
        asked = _scenarios(scenarios, name, flags, autoscale, route or [])
        report = _run(
            settings, start, end, workload, asked, history_workers, progress=not (as_json or as_csv)
        )
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    elif as_csv:
        from rendercost.capacity.output import plan_csv

        typer.echo(plan_csv(report), nl=False)
    else:
        _print_table(report)


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-05-01T00:00:00Z)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _scenarios(
    path: Path | None, name: str, flags: dict[str, Any], autoscale: str | None, routes: list[str]
) -> list[Scenario]:
    from rendercost.capacity.scenario import load_scenarios, parse_routes, scenario_from_mapping

    found = list(load_scenarios(path)) if path is not None else []
    values = {k: v for k, v in flags.items() if v is not None}
    if autoscale is not None:
        low, sep, high = autoscale.partition(":")
        if not sep or not low.isdigit() or not high.isdigit():
            fail(f"--autoscale: {autoscale!r} is not MIN:MAX, e.g. 0:4")
        values.update(autoscale=True, min_workers=int(low), max_workers=int(high))
    if routes:
        values["routes"] = {k: v for text in routes for k, v in parse_routes(text).items()}
    if values:
        found.append(scenario_from_mapping(values, default_name=name))
    return found


def _run(
    settings: Any,
    start: datetime,
    end: datetime,
    workload_path: Path | None,
    scenarios: list[Scenario],
    history_workers: int | None,
    *,
    progress: bool,
) -> PlanReport:
    from rendercost.capacity.plan import assemble, prepare, run_scenario
    from rendercost.capacity.scenario import AS_IS, Scenario
    from rendercost.capacity.workload import load_jsonl
    from rendercost.db.engine import create_db_engine
    from rendercost.db.migrate import migrate
    from rendercost.ledger.catalog import PriceCatalog

    workload = load_jsonl(workload_path) if workload_path is not None else None
    catalog = PriceCatalog.load(settings.catalog_path)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        migrate(engine)
        context = prepare(
            engine, settings, catalog, since=start, until=end, workload=workload, workers=history_workers
        )
    finally:
        engine.dispose()
    everything = [Scenario(name=AS_IS), *scenarios]
    outcomes = (
        _with_progress(context, everything)
        if progress and sys.stderr.isatty()
        else [run_scenario(context.inputs, s) for s in everything]
    )
    return assemble(context, outcomes[0], outcomes[1:])


def _with_progress(context: PlanContext, scenarios: list[Scenario]) -> list[Any]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from rendercost.capacity.plan import run_scenario

    jobs = len(context.inputs.workload.arrivals)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"replaying {jobs} jobs", total=len(scenarios))
        outcomes = []
        for scenario in scenarios:
            bar.update(task, description=f"replaying {jobs} jobs: {scenario.name}")
            outcomes.append(run_scenario(context.inputs, scenario))
            bar.advance(task)
    return outcomes


def _print_table(report: PlanReport) -> None:
    from rich.console import Console
    from rich.table import Table

    from rendercost.capacity.output import TABLE_COLUMNS, plan_rows

    evidence = report.evidence
    table = Table(
        title=f"plan over {evidence['window']} ({evidence['jobs']} jobs, {evidence['images']} images)"
    )
    for title, _ in TABLE_COLUMNS:
        table.add_column(title)
    for row in plan_rows(report):
        table.add_row(*(str(row.get(key, "")) for _, key in TABLE_COLUMNS))
    console = Console()
    console.print(table)
    if report.backtest:
        error = report.backtest["error"]
        shown = "n/a" if error is None else f"{error:+.2%}"
        console.print(
            f"backtest: ledger {report.backtest['ledger_total_usd']} USD, as-is replay "
            f"{report.backtest['replayed_total_usd']} USD ({shown})"
        )
    devices = ", ".join(evidence["measured_devices"]) or "no device"
    console.print(
        f"prices as of {evidence['price_table']['as_of']}; calibrated on "
        f"{evidence['calibration_samples']} stage samples from {devices}"
    )
    for scenario, evens in report.breakevens.items():
        cells = [f"{k}={v}" for k, v in evens.items() if v not in ("", None) or k.endswith("utilization")]
        if cells:
            console.print(f"{scenario}: " + ", ".join(cells))
