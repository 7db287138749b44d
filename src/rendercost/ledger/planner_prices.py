"""The price catalog's planner tables: device speeds, serverless offers, spot interruption rates.

Read from the same TOML file as the prices (``ledger.catalog``), in these sections::

    [speeds.<device_type>]            relative (L4 = 1.0), evidence ("inferred" | "measured"), source
    [serverless.<offer>]              device, usd_per_second, increment_s, bills_cold_start,
                                      idle_timeout_s, cold_start_s, as_of, source
    [spot_interruption.<device_type>] band, per_hour, replacement_s

All three are optional (a catalog without them plans only what the history measured). Money is an
exact ``Decimal``; speeds, rates and seconds are floats. A malformed entry raises ``InvalidRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rendercost.errors import InvalidRequest

EVIDENCE = ("inferred", "measured")  # what a speed number rests on


@dataclass(frozen=True)
class DeviceSpeed:
    """How fast a device renders SDXL, relative to an L4 (1.0 = as fast; 2.0 = twice as fast)."""

    relative: float  # throughput ratio to the L4
    evidence: str  # "inferred" (published figures) or "measured" (your own history)
    source: str  # where the number comes from


@dataclass(frozen=True)
class ServerlessOffer:
    """A serverless GPU offer and its billing rules."""

    name: str  # catalog key, e.g. "runpod-flex-24gb"
    device: str  # device type whose speed applies
    usd_per_second: Decimal  # price of one GPU-second
    increment_s: float  # a worker session's billed time is rounded up to a multiple of this
    bills_cold_start: bool  # the model load time is billed
    idle_timeout_s: float  # a worker stays up (and billed) this long after its last job
    cold_start_s: float  # typical model load time on this platform
    as_of: str  # date of the price
    source: str  # pricing page


@dataclass(frozen=True)
class SpotInterruption:
    """How often a device's spot capacity is taken back."""

    band: str  # the Spot Instance Advisor's monthly band, e.g. "5-10%"
    per_hour: float  # interruptions per instance-hour
    replacement_s: float  # seconds without the capacity after an interruption


@dataclass(frozen=True)
class PlannerTables:
    """The three planner tables of one catalog (each may be empty)."""

    speeds: Mapping[str, DeviceSpeed] = field(default_factory=dict)
    serverless: Mapping[str, ServerlessOffer] = field(default_factory=dict)
    spot_interruption: Mapping[str, SpotInterruption] = field(default_factory=dict)


def parse_planner_tables(raw: Mapping[str, Any], source: str) -> PlannerTables:
    """The planner tables of a parsed catalog document (``tomllib`` with ``parse_float=Decimal``)."""
    speeds = {
        name: _speed(_table(value, f"speeds.{name}", source), f"speeds.{name}", source)
        for name, value in _table(raw.get("speeds", {}), "speeds", source).items()
    }
    offers = {
        name: _offer(name, _table(value, f"serverless.{name}", source), source)
        for name, value in _table(raw.get("serverless", {}), "serverless", source).items()
    }
    spot = {
        name: SpotInterruption(
            band=str(value.get("band", "")),
            per_hour=_number(value, "per_hour", f"spot_interruption.{name}", source),
            replacement_s=_number(value, "replacement_s", f"spot_interruption.{name}", source),
        )
        for name, value in (
            (n, _table(v, f"spot_interruption.{n}", source))
            for n, v in _table(raw.get("spot_interruption", {}), "spot_interruption", source).items()
        )
    }
    return PlannerTables(speeds=speeds, serverless=offers, spot_interruption=spot)


def _speed(table: Mapping[str, Any], where: str, source: str) -> DeviceSpeed:
    evidence = str(table.get("evidence", "inferred"))
    if evidence not in EVIDENCE:
        raise InvalidRequest(
            f"price catalog {source}: {where}.evidence must be one of {', '.join(EVIDENCE)}",
            param="catalog_path",
        )
    relative = _number(table, "relative", where, source)
    if relative <= 0:
        raise InvalidRequest(f"price catalog {source}: {where}.relative must be > 0", param="catalog_path")
    return DeviceSpeed(relative=relative, evidence=evidence, source=str(table.get("source", "")))


def _offer(name: str, table: Mapping[str, Any], source: str) -> ServerlessOffer:
    where = f"serverless.{name}"
    price = table.get("usd_per_second")
    if isinstance(price, bool) or not isinstance(price, Decimal | int) or Decimal(price) < 0:
        raise InvalidRequest(
            f"price catalog {source}: {where}.usd_per_second must be a number >= 0", param="catalog_path"
        )
    return ServerlessOffer(
        name=name,
        device=str(table.get("device", "")),
        usd_per_second=Decimal(price),
        increment_s=max(_number(table, "increment_s", where, source), 1e-9),
        bills_cold_start=bool(table.get("bills_cold_start", True)),
        idle_timeout_s=_number(table, "idle_timeout_s", where, source),
        cold_start_s=_number(table, "cold_start_s", where, source),
        as_of=str(table.get("as_of", "")),
        source=str(table.get("source", "")),
    )


def _table(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"price catalog {source}: {where} must be a table", param="catalog_path")
    return value


def _number(table: Mapping[str, Any], name: str, where: str, source: str) -> float:
    value = table.get(name)
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        raise InvalidRequest(f"price catalog {source}: {where}.{name} must be a number", param="catalog_path")
    number = float(value)
    if number < 0:
        raise InvalidRequest(f"price catalog {source}: {where}.{name} must be >= 0", param="catalog_path")
    return number
