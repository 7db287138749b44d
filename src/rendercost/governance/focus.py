"""FOCUS 1.2 export of the ledger: one row per cost line, CSV or Parquet.

The rows are an *allocation of machine cost* (``x_AllocationOf = "machine cost"``): the cloud bill
already holds the machine, so these rows say who used it. Load them beside the bill for showback, never
add them to it. Every money column is a decimal string; ``BilledCost`` equals the ledger's ``cost``,
so the export's total equals ``Ledger.total`` over the same window to the cent (and beyond).

Rules applied (FOCUS 1.2): timestamps ``YYYY-MM-DDTHH:mm:ssZ`` with exclusive ends; the charge period is
the UTC hour holding the line and the billing period its calendar month; ``ListCost = ListUnitPrice x
PricingQuantity``; ``Tags`` is a flat JSON object; custom columns start with ``x_``.

Savings: ``x_CostAvoided`` is what a cache saved on the line; the saving lines measured on it (routing,
batching, lifecycle: ``ledger.savings``) are its ``x_Savings`` (their exact sum) and one tag each,
``saving:<mechanism>`` (e.g. ``"saving:routing": "0.0012"``), so a FOCUS tool can group by them.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from rendercost.domain.costs import Stage
from rendercost.governance.reports import saving_rows
from rendercost.ledger.ledger import period_filters
from rendercost.ledger.tables import cost_lines

PROVIDER = "rendercost"  # ProviderName, PublisherName, InvoiceIssuerName
AI_SERVICE = "rendercost image generation"  # ServiceName of renders, rewrites and idle time
STORAGE_SERVICE = "rendercost artifact storage"  # ServiceName of stored images
ALLOCATION_OF = "machine cost"  # x_AllocationOf: these rows split a machine the cloud bill already holds
AI_CATEGORY = ("AI and Machine Learning", "Generative AI")
STORAGE_CATEGORY = ("Storage", "Object Storage")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

COLUMNS: tuple[str, ...] = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "SubAccountId",
    "SubAccountName",
    "Tags",
    "x_AllocationOf",
    "x_RenderId",
    "x_ImageIndex",
    "x_Stage",
    "x_BatchId",
    "x_BatchSize",
    "x_DeviceSeconds",
    "x_DeviceType",
    "x_PricingModel",
    "x_CostBasis",
    "x_CostAvoided",
    "x_Savings",
)
SAVING_TAG_PREFIX = "saving:"

_FOCUS_UNITS = {"device-hour": "Hours", "GB-month": "GB-Months", "1M tokens": "1000000 Tokens"}
_PRICING_CATEGORY = {"on_demand": "Standard", "spot": "Dynamic", "reserved": "Committed"}


@dataclass(frozen=True)
class FocusExport:
    """What ``write_focus`` wrote: the file, its row count and the exact sum of ``BilledCost``."""

    path: Path
    rows: int
    billed_total: Decimal


def fmt_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ssZ`` in UTC."""
    return moment.strftime(TIMESTAMP_FORMAT)


def _money(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def focus_unit(unit: str) -> str:
    """The ledger's unit in FOCUS UnitFormat (``device-hour`` -> ``Hours``); unknown units pass through."""
    return _FOCUS_UNITS.get(unit, unit)


def _month_bounds(moment: datetime) -> tuple[datetime, datetime]:
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start, end


def focus_row(row: Any, savings: Mapping[str, Decimal] | None = None) -> dict[str, str]:
    """One FOCUS row (column -> string) for one ``cost_lines`` row mapping and the savings measured
    on it (mechanism -> USD)."""
    created: datetime = row["created_at"]
    hour = created.replace(minute=0, second=0, microsecond=0)
    month_start, month_end = _month_bounds(created)
    stage = str(row["stage"])
    idle = stage == str(Stage.IDLE)
    storage = stage == str(Stage.STORAGE)
    category, subcategory = STORAGE_CATEGORY if storage else AI_CATEGORY
    unit = focus_unit(str(row["unit"]))
    cost: Decimal = row["cost"]
    unit_price: Decimal = row["unit_price"]
    quantity: Decimal = row["quantity"]
    tags = {str(k): str(v) for k, v in dict(row["tags"]).items()}
    tags.update({"tenant": row["tenant"], "model": row["model"], "preset": row["preset"], "stage": stage})
    if row["request_class"]:
        tags.setdefault("class", str(row["request_class"]))  # a routed render class wins over priority
    saved = dict(savings or {})
    tags.update({f"{SAVING_TAG_PREFIX}{name}": _money(amount) for name, amount in saved.items()})
    resource = f"{row['device_type']}/{row['pricing_model']}"
    return {
        "BilledCost": _money(cost),
        "BillingAccountId": row["tenant"],
        "BillingAccountName": row["tenant"],
        "BillingCurrency": "USD",
        "BillingPeriodStart": fmt_time(month_start),
        "BillingPeriodEnd": fmt_time(month_end),
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": f"{stage} of render {row['job_id']} ({row['model']}, {row['preset']})"
        if not idle
        else f"idle device time of {row['job_id']}",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodStart": fmt_time(hour),
        "ChargePeriodEnd": fmt_time(hour + timedelta(hours=1)),
        "ConsumedQuantity": _money(quantity),
        "ConsumedUnit": unit,
        "ContractedCost": _money(cost),
        "ContractedUnitPrice": _money(unit_price),
        "EffectiveCost": _money(cost),
        "InvoiceId": f"{PROVIDER}-{row['tenant']}-{month_start:%Y-%m}",  # the tenant's monthly statement
        "InvoiceIssuerName": PROVIDER,
        "ListCost": _money(unit_price * quantity),
        "ListUnitPrice": _money(unit_price),
        "PricingCategory": _PRICING_CATEGORY.get(str(row["pricing_model"]), "Standard"),
        "PricingQuantity": _money(quantity),
        "PricingUnit": unit,
        "ProviderName": PROVIDER,
        "PublisherName": PROVIDER,
        "ResourceId": resource,
        "ResourceName": resource,
        "ResourceType": "Storage Bucket" if storage else "GPU Worker",
        "ServiceCategory": category,
        "ServiceName": STORAGE_SERVICE if storage else AI_SERVICE,
        "ServiceSubcategory": subcategory,
        "SubAccountId": row["tenant"],
        "SubAccountName": row["tenant"],
        "Tags": json.dumps(tags, sort_keys=True, separators=(",", ":")),
        "x_AllocationOf": ALLOCATION_OF,
        "x_RenderId": "" if idle else str(row["job_id"]),
        "x_ImageIndex": str(row["image_index"]),
        "x_Stage": stage,
        "x_BatchId": str(row["batch_id"]),
        "x_BatchSize": str(row["batch_size"]),
        "x_DeviceSeconds": repr(float(row["device_seconds"])),
        "x_DeviceType": str(row["device_type"]),
        "x_PricingModel": str(row["pricing_model"]),
        "x_CostBasis": "idle" if idle else "marginal",
        "x_CostAvoided": _money(row["cost_avoided"]),
        "x_Savings": _money(sum(saved.values(), Decimal(0))),
    }


def iter_focus_rows(
    engine: Engine, since: datetime | None = None, until: datetime | None = None, tenant: str | None = None
) -> Iterator[dict[str, str]]:
    """FOCUS rows for lines created in ``[since, until)`` (optionally one tenant's), oldest first."""
    query = select(cost_lines).order_by(cost_lines.c.created_at, cost_lines.c.id)
    query = query.where(*period_filters(since, until, tenant))
    savings: dict[tuple[str, int, str], dict[str, Decimal]] = defaultdict(dict)
    for saved in saving_rows(engine, since, until, tenant):
        key = (saved["job_id"], saved["image_index"], saved["stage"])
        savings[key][str(saved["mechanism"])] = saved["amount"]
    with engine.connect() as conn:
        for row in conn.execute(query).mappings():
            yield focus_row(row, savings.get((row["job_id"], row["image_index"], row["stage"])))


def write_csv(rows: Sequence[dict[str, str]], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        write_csv_to(rows, handle)


def write_csv_to(rows: Sequence[dict[str, str]], handle: Any) -> None:
    """CSV with a header row; empty strings are FOCUS nulls."""
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


def write_parquet(rows: Sequence[dict[str, str]], path: Path) -> None:
    """Parquet (pyarrow): money and quantities as exact decimal strings, empty strings as nulls."""
    import pyarrow as pa  # type: ignore[import-untyped]  # imported here: only Parquet needs it
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.table({name: [row[name] or None for row in rows] for name in COLUMNS})
    pq.write_table(table, path)


def write_focus(
    engine: Engine,
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    tenant: str | None = None,
) -> FocusExport:
    """Write the export to ``path`` (``.csv`` or ``.parquet``); ``ValueError`` for another suffix.

    The file is written to a temporary sibling and renamed, so a failure leaves no half-written file.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"unknown export format {path.suffix!r}: use .csv or .parquet")
    rows = list(iter_focus_rows(engine, since, until, tenant))
    partial = path.with_name(path.name + ".partial")
    try:
        (write_csv if suffix == ".csv" else write_parquet)(rows, partial)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    total = sum((Decimal(row["BilledCost"]) for row in rows), Decimal(0))
    return FocusExport(path=path, rows=len(rows), billed_total=total)
