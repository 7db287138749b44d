"""One FOCUS 1.2 row per cost line: the columns, the rules that fill them, and the row as CSV text.

``focus_values`` builds a row from a line's fields in the order ``LINE_FIELDS`` names (``focus.py``
reads them in that order, money and tags as text: exact on both engines); ``focus_row`` is the same row
as a dict. ``csv_line`` writes a row exactly as ``csv.writer`` (``QUOTE_MINIMAL``) would, quoting only
the columns that carry text from the ledger: the others are numbers, times and constants that never need
it. What many lines share (the hour's periods, a stage's categories, a tag set's JSON) is computed once.
Rules (FOCUS 1.2): timestamps ``YYYY-MM-DDTHH:mm:ssZ`` with exclusive ends; the charge period is the UTC
hour holding the line and the billing period its calendar month; ``ListCost = ListUnitPrice x
PricingQuantity``; ``Tags`` is a flat JSON object; custom columns start with ``x_``.

Savings: ``x_CostAvoided`` is what a cache saved on the line; the saving lines measured on it (routing,
batching, lifecycle: ``ledger.savings``) are its ``x_Savings`` (their exact sum) and one tag each,
``saving:<mechanism>`` (e.g. ``"saving:routing": "0.0012"``), so a FOCUS tool can group by them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any

from rendercost.domain.costs import Stage

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

# A line's fields as ``focus_values`` takes them; ``hour`` is "YYYY-MM-DD HH" of its UTC creation time.
LINE_FIELDS: tuple[str, ...] = (
    "job_id",
    "image_index",
    "stage",
    "device_seconds",
    "unit_price",
    "unit",
    "quantity",
    "cost",
    "cost_avoided",
    "device_type",
    "pricing_model",
    "batch_id",
    "batch_size",
    "tenant",
    "model",
    "preset",
    "request_class",
    "tags",
    "hour",
)
# Columns whose text comes from the ledger and so may hold a comma, quote or newline.
_FREE_TEXT = tuple(
    COLUMNS.index(name)
    for name in (
        "BillingAccountId",
        "BillingAccountName",
        "ChargeDescription",
        "ConsumedUnit",
        "InvoiceId",
        "PricingUnit",
        "ResourceId",
        "ResourceName",
        "SubAccountId",
        "SubAccountName",
        "Tags",
        "x_RenderId",
        "x_Stage",
        "x_BatchId",
        "x_DeviceType",
        "x_PricingModel",
    )
)

_DESCRIPTION, _TAGS = COLUMNS.index("ChargeDescription"), COLUMNS.index("Tags")
_PROBED = itemgetter(*(i for i in _FREE_TEXT if i not in (_DESCRIPTION, _TAGS)))


def fmt_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ssZ`` in UTC."""
    return moment.strftime(TIMESTAMP_FORMAT)


def _money(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _money_of(value: Decimal | str) -> str:
    """``_money`` of a Decimal or a decimal text; a plain text (digits, one point, no exponent) is trimmed
    as text, which gives the same string without building a Decimal (a million lines' costs)."""
    if isinstance(value, str) and "e" not in value and "E" not in value:
        text = value.rstrip("0").rstrip(".") if "." in value else value
        return "0" if text in ("", "-", "-0", "0") else text
    return _money(Decimal(value))


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


@lru_cache(maxsize=8192)
def _hour(hour: str) -> tuple[str, str, str, str, str]:
    """Charge period start and end, billing period start and end, and ``YYYY-MM`` of an hour."""
    start = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC)
    month_start, month_end = _month_bounds(start)
    return (
        fmt_time(start),
        fmt_time(start + timedelta(hours=1)),
        fmt_time(month_start),
        fmt_time(month_end),
        f"{month_start:%Y-%m}",
    )


@lru_cache(maxsize=64)
def _stage(stage: str) -> tuple[str, str, str, str, str]:
    """ResourceType, ServiceCategory, ServiceName, ServiceSubcategory and x_CostBasis of a stage."""
    storage = stage == str(Stage.STORAGE)
    category, subcategory = STORAGE_CATEGORY if storage else AI_CATEGORY
    return (
        "Storage Bucket" if storage else "GPU Worker",
        category,
        STORAGE_SERVICE if storage else AI_SERVICE,
        subcategory,
        "idle" if stage == str(Stage.IDLE) else "marginal",
    )


@lru_cache(maxsize=65536)
def _tags(
    tags: str,
    tenant: str,
    model: str,
    preset: str,
    stage: str,
    request_class: str | None,
    saved: tuple[tuple[str, str], ...],
) -> str:
    """The ``Tags`` column: the line's tags (JSON text) with its dimensions and its savings
    (``saving:<mechanism>``), as one flat JSON object."""
    flat = {str(k): str(v) for k, v in json.loads(tags).items()}
    flat.update({"tenant": tenant, "model": model, "preset": preset, "stage": stage})
    if request_class:
        flat.setdefault("class", request_class)  # a routed render class wins over priority
    flat.update({f"{SAVING_TAG_PREFIX}{name}": amount for name, amount in saved})
    return json.dumps(flat, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=1024)
def _resource(device_type: str, pricing_model: str) -> tuple[str, str]:
    """ResourceId (= ResourceName) and PricingCategory of a device and pricing model."""
    return f"{device_type}/{pricing_model}", _PRICING_CATEGORY.get(pricing_model, "Standard")


@lru_cache(maxsize=65536)
def _invoice(tenant: str, month: str) -> str:
    return f"{PROVIDER}-{tenant}-{month}"  # the tenant's monthly statement


@lru_cache(maxsize=65536)
def _money_text(value: str) -> str:
    """``_money`` of a decimal text (prices, quantities and savings repeat from line to line)."""
    return _money(Decimal(value))


@lru_cache(maxsize=65536)
def _price(unit_price: str, quantity: str) -> tuple[str, str, str]:
    """ListUnitPrice, PricingQuantity and ListCost (their exact product) of a price and a quantity."""
    price, amount = Decimal(unit_price), Decimal(quantity)
    return _money(price), _money(amount), _money(price * amount)


def focus_values(
    job_id: str,
    image_index: int,
    stage: str,
    device_seconds: float,
    unit_price: Decimal | str,
    unit: str,
    quantity: Decimal | str,
    cost: Decimal | str,
    cost_avoided: Decimal | str,
    device_type: str,
    pricing_model: str,
    batch_id: str,
    batch_size: int,
    tenant: str,
    model: str,
    preset: str,
    request_class: str | None,
    tags: str,
    hour: str,
    *,
    savings: Mapping[str, Decimal] | None = None,
) -> tuple[str, ...]:
    """The FOCUS row of one line, in ``COLUMNS`` order (money as ``Decimal`` or decimal text, tags as
    JSON text, ``hour`` as "YYYY-MM-DD HH" in UTC; ``savings``: mechanism -> USD measured on it)."""
    charge_start, charge_end, billing_start, billing_end, month = _hour(hour)
    resource_type, category, service, subcategory, basis = _stage(stage)
    idle = basis == "idle"
    billed = _money_of(cost)
    price_text, amount_text, list_cost = _price(str(unit_price), str(quantity))
    focus_units = focus_unit(unit)
    resource, pricing_category = _resource(device_type, pricing_model)
    description = (
        f"idle device time of {job_id}" if idle else f"{stage} of render {job_id} ({model}, {preset})"
    )
    saved: tuple[tuple[str, str], ...] = ()
    saved_total = "0"
    if savings:
        saved = tuple(sorted((name, _money(amount)) for name, amount in savings.items()))
        saved_total = _money(sum(savings.values(), Decimal(0)))
    return (
        billed, tenant, tenant, "USD", billing_start, billing_end, "Usage", "", description,
        "Usage-Based", charge_start, charge_end, amount_text, focus_units, billed, price_text, billed,
        _invoice(tenant, month), PROVIDER, list_cost, price_text, pricing_category, amount_text,
        focus_units, PROVIDER, PROVIDER,
        resource, resource, resource_type, category, service, subcategory, tenant, tenant,
        _tags(tags, tenant, model, preset, stage, request_class, saved), ALLOCATION_OF,
        "" if idle else job_id, str(image_index), stage, batch_id, str(batch_size),
        repr(float(device_seconds)), device_type, pricing_model, basis, _money_text(str(cost_avoided)),
        saved_total,
    )  # fmt: skip


def focus_row(line: Mapping[str, Any], savings: Mapping[str, Decimal] | None = None) -> dict[str, str]:
    """The FOCUS row (column -> text) of one ``cost_lines`` row mapping (``created_at`` a datetime,
    ``tags`` a dict or JSON text) and the savings measured on it (mechanism -> USD)."""
    tags = line["tags"] if isinstance(line["tags"], str) else json.dumps(dict(line["tags"]))
    hour = line["created_at"].astimezone(UTC).strftime("%Y-%m-%d %H")
    fields = {**line, "tags": tags, "hour": hour}
    values = focus_values(*(fields[name] for name in LINE_FIELDS), savings=savings)
    return dict(zip(COLUMNS, values, strict=True))


def _quote_if_needed(text: str) -> str:
    if "," in text or '"' in text or "\n" in text:  # csv.writer: delimiter, quote, line terminator
        return '"' + text.replace('"', '""') + '"'
    return text


_quoted = lru_cache(maxsize=65536)(_quote_if_needed)  # for texts that repeat (tags, tenants, devices)


def csv_line(values: Sequence[str]) -> str:
    """One CSV record of a ``focus_values`` row, byte for byte what ``csv.writer`` writes with
    ``lineterminator="\n"``. The free-text columns but two are checked at once, as one string; the
    description and tags (which nearly always need quotes) one by one."""
    probe = "\x00".join(_PROBED(values))
    out = list(values)
    if "," in probe or '"' in probe or "\n" in probe:
        for index in _FREE_TEXT:
            out[index] = _quoted(out[index])
    else:
        out[_DESCRIPTION] = _quote_if_needed(out[_DESCRIPTION])
        out[_TAGS] = _quoted(out[_TAGS])
    return ",".join(out) + "\n"


def csv_header() -> str:
    return ",".join(COLUMNS) + "\n"
