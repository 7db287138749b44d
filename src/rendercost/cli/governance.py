"""`rendercost report`, `rendercost export focus`, `rendercost budgets set|list|show|override`.

All read or write the configured database (``database_url``, else the SQLite file in ``data_dir``).
Times are ISO 8601 (``2026-05-01`` or ``2026-05-01T12:00:00Z``); a time without a zone is UTC.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rendercost.cli.common import cli_errors, fail, load_settings
from rendercost.db.clock import as_utc
from rendercost.governance.periods import Period

if TYPE_CHECKING:  # the governance modules import SQLAlchemy: each command imports what it runs
    from sqlalchemy import Engine

    from rendercost.governance.reports import Report

export_app = typer.Typer(help="Export the ledger.", no_args_is_help=True)
budgets_app = typer.Typer(
    help="Budgets per tenant or global ('global'), per day or month.", no_args_is_help=True
)

SinceOpt = Annotated[str | None, typer.Option("--since", help="Start (inclusive), ISO 8601, UTC.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="End (exclusive), ISO 8601, UTC.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


class ReportFormat(StrEnum):
    """How ``report`` prints."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("report")(report)
    app.command("anomalies")(anomalies)
    app.add_typer(export_app, name="export")
    app.add_typer(budgets_app, name="budgets")


def parse_time(value: str | None, option: str) -> datetime | None:
    """ISO 8601 -> aware UTC; ``fail`` with the option's name when it does not parse."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 time (e.g. 2026-05-01T00:00:00Z)")
    return as_utc(moment)


@contextmanager
def _engine(ctx: typer.Context) -> Iterator[Engine]:
    from rendercost.db.engine import create_db_engine

    settings = load_settings(ctx)
    engine = create_db_engine(settings.resolved_database_url)
    try:
        from rendercost.db.migrate import migrate  # alembic: only when a command opens the database

        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def _scope(name: str) -> str:
    from rendercost.governance.tables import GLOBAL_SCOPE

    return GLOBAL_SCOPE if name in ("global", GLOBAL_SCOPE) else name


def report(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="Group by: tenant,model,preset,stage,class.")] = "tenant",
    since: SinceOpt = None,
    until: UntilOpt = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    output: Annotated[ReportFormat, typer.Option("--format", help="How to print.")] = ReportFormat.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Renders, device time, cost, latency and savings, grouped; busy vs idle time in the totals."""
    from rendercost.governance.reports import build_report, parse_dimensions

    if as_json:
        output = ReportFormat.JSON
    try:
        dims = parse_dimensions(by)
    except ValueError as exc:
        fail(str(exc))
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with cli_errors(), _engine(ctx) as engine:
        result = build_report(engine, by=dims, since=start, until=end, tenant=tenant)
    if output is ReportFormat.JSON:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif output is ReportFormat.CSV:
        _print_csv(result)
    else:
        _print_table(result)


def _flat_rows(result: Report) -> list[dict[str, Any]]:
    rows = []
    for row in result.rows:
        flat = row.to_dict()
        savings = flat.pop("savings_usd")
        flat["savings_usd"] = ";".join(f"{k}={v}" for k, v in savings.items())
        rows.append(flat)
    return rows


def _print_csv(result: Report) -> None:
    rows = _flat_rows(result)
    fields = [*result.dimensions, "renders", "images", "device_seconds", "cost_usd", "cost_per_render_usd"]
    fields += ["p50_latency_s", "p95_latency_s", "cache_hits", "cache_hit_rate", "savings_usd"]
    writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def _print_table(result: Report) -> None:
    head = [d.upper() for d in result.dimensions] + [
        "RENDERS",
        "DEVICE_S",
        "COST_USD",
        "PER_RENDER",
        "P50_S",
        "P95_S",
    ]
    typer.echo("  ".join(f"{h:<14}" for h in head))
    for row in result.rows:
        cells = [*row.key.values(), str(row.renders), f"{row.device_seconds:.3f}", f"{row.cost:.6f}"]
        cells += [f"{row.cost_per_render:.6f}", _secs(row.p50_latency_s), _secs(row.p95_latency_s)]
        typer.echo("  ".join(f"{c:<14}" for c in cells))
    totals = result.to_dict()["totals"]
    typer.echo(
        f"total: {result.renders} renders, allocated {totals['allocated_cost_usd']} USD + idle "
        f"{totals['idle_cost_usd']} USD = machine {totals['machine_cost_usd']} USD; busy "
        f"{result.busy_seconds:.1f} s, idle {result.idle_seconds:.1f} s ({result.utilization:.0%} utilized); "
        f"per render {totals['marginal_cost_per_render_usd']} marginal, "
        f"{totals['loaded_cost_per_render_usd']} fully loaded"
    )
    if result.savings:
        typer.echo("saved: " + ", ".join(f"{k} {v:.6f} USD" for k, v in sorted(result.savings.items())))


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def anomalies(
    ctx: typer.Context,
    since: SinceOpt = None,
    until: UntilOpt = None,
    min_excess: Annotated[float, typer.Option("--min-excess", help="Absolute floor, USD per hour.")] = 1.0,
    min_ratio: Annotated[float, typer.Option("--min-ratio", help="Relative floor over the baseline.")] = 0.5,
    alert: Annotated[
        bool, typer.Option("--alert", help="Send each new one as an alert (log, budget alert webhook).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array (empty when none).")] = False,
) -> None:
    """Tenant-hours whose spend is far above their same-hour-of-week baseline (default: last 5 weeks).

    Prints one JSON object per line, or "No spend anomalies."; ``--json`` prints one JSON array."""
    from rendercost.governance.anomaly import Thresholds, scan
    from rendercost.governance.budgets import BudgetStore

    end = parse_time(until, "--until") or datetime.now(UTC)
    start = parse_time(since, "--since") or end - timedelta(weeks=5)
    limits = Thresholds(min_excess_usd=min_excess, min_excess_ratio=min_ratio)
    settings = load_settings(ctx)
    with cli_errors(), _engine(ctx) as engine:
        found = scan(engine, start, end, thresholds=limits)
        if alert:
            from rendercost.api.app import resolve_webhook_secret  # imports fastapi
            from rendercost.governance.alerts import AlertNotifier  # imports httpx

            notifier = AlertNotifier(
                BudgetStore(engine),
                webhook_url=settings.budget_alert_webhook_url,
                secret=resolve_webhook_secret(settings, engine),
            )
            notifier.anomalies(found)
    if as_json:
        typer.echo(json.dumps([anomaly.to_dict() for anomaly in found], indent=2))
        return
    for anomaly in found:
        typer.echo(json.dumps(anomaly.to_dict()))
    if not found:
        typer.echo("No spend anomalies.")


@export_app.command("focus")
def export_focus(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="FILE.csv or FILE.parquet.")],
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """The ledger as FOCUS 1.2 rows (an allocation of machine cost: load beside the cloud bill)."""
    from rendercost.governance.focus import write_focus

    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    with cli_errors(), _engine(ctx) as engine:
        try:
            result = write_focus(engine, out, since=start, until=end)
        except ValueError as exc:
            fail(str(exc))
    typer.echo(
        f"Wrote {result.rows} FOCUS rows to {result.path} (BilledCost total {result.billed_total} USD)."
    )


@budgets_app.command("set")
def budgets_set(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant, or 'global' for all tenants together.")],
    amount: Annotated[str, typer.Option("--amount", help="USD per period, e.g. 250.00.")],
    period: Annotated[Period, typer.Option("--period", help="UTC calendar day or month.")] = Period.MONTH,
) -> None:
    """Create or change a budget."""
    from rendercost.governance.budgets import BudgetStore

    with cli_errors(), _engine(ctx) as engine:
        budget = BudgetStore(engine).set(_scope(tenant), amount, period)
    typer.echo(json.dumps(budget.to_dict(), indent=2))


@budgets_app.command("list")
def budgets_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every budget with its spend, reservations and what remains this period."""
    from rendercost.governance.budgets import BudgetStore
    from rendercost.governance.tables import GLOBAL_SCOPE

    with cli_errors(), _engine(ctx) as engine:
        found = BudgetStore(engine).list()
    if as_json:
        typer.echo(json.dumps([budget.to_dict() for budget in found], indent=2))
        return
    typer.echo(
        f"{'SCOPE':<20} {'PERIOD':<6} {'AMOUNT':>12} {'SPENT':>14} {'RESERVED':>14} "
        f"{'REMAINING':>14} OVERRIDE"
    )
    for b in found:
        scope = "global" if b.scope == GLOBAL_SCOPE else b.scope
        until = b.override_until.strftime("%Y-%m-%dT%H:%M:%SZ") if b.override_until else "-"
        typer.echo(
            f"{scope:<20} {b.period!s:<6} {b.amount:>12.2f} {b.spent:>14.6f} {b.reserved:>14.6f} "
            f"{b.remaining:>14.6f} {until}"
        )


@budgets_app.command("show")
def budgets_show(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant or 'global'.")],
    _as_json: Annotated[
        bool, typer.Option("--json", help="JSON (the only format; accepted for scripts).")
    ] = False,
) -> None:
    """One budget as JSON (``--json`` is accepted like on every listing command)."""
    from rendercost.governance.budgets import BudgetStore

    with cli_errors(), _engine(ctx) as engine:
        budget = BudgetStore(engine).get(_scope(tenant))
    typer.echo(json.dumps(budget.to_dict(), indent=2))


@budgets_app.command("override")
def budgets_override(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Argument(help="Tenant or 'global'.")],
    until: Annotated[
        str | None, typer.Option("--until", help="Admit past the budget until then (UTC).")
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="End the override now.")] = False,
) -> None:
    """Let a tenant past its budget until a time (or end that with --clear)."""
    from rendercost.governance.budgets import BudgetStore

    if (until is None) == (not clear):
        fail("give --until TIME or --clear")
    moment = parse_time(until, "--until")
    with cli_errors(), _engine(ctx) as engine:
        budget = BudgetStore(engine).override(_scope(tenant), None if clear else moment)
    typer.echo(json.dumps(budget.to_dict(), indent=2))
