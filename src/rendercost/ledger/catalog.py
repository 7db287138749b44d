"""The price catalog: USD per device-hour, per GB-month, per 1000 PUTs and per 1M LLM tokens.

A catalog is a TOML file (the shipped one is ``rendercost/data/catalog.toml``; ``settings.catalog_path``
names your own) with this shape::

    [devices.<device_type>.<on_demand|spot|reserved>]
    <region> = <USD per device-hour>
    [storage.<backend>.<region>]
    gb_month = <USD per GB-month>
    put_per_1000 = <USD per 1000 PUT requests>
    [llm."<model>"]
    input_per_1m = <USD>
    output_per_1m = <USD>

Numbers are parsed as exact ``Decimal`` (``tomllib`` with ``parse_float=Decimal``). A lookup that the
catalog cannot answer raises ``InvalidRequest`` naming what is missing and what is there.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from rendercost.domain.costs import PricingModel
from rendercost.domain.money import COST_QUANTUM
from rendercost.errors import InvalidRequest
from rendercost.ledger.planner_prices import PlannerTables, parse_planner_tables

SHIPPED_CATALOG = "catalog.toml"  # file name inside the rendercost.data package folder
STORAGE_BACKENDS = ("local", "s3")  # backends the artifact stores price against

_T = TypeVar("_T")


@dataclass(frozen=True)
class StoragePrices:
    """Prices of one storage backend in one region."""

    gb_month: Decimal  # USD per GB-month (GB = 2**30 bytes)
    put_per_1000: Decimal  # USD per 1000 PUT requests


@dataclass(frozen=True)
class TokenPrices:
    """Prices of one LLM."""

    input_per_1m: Decimal  # USD per 1M prompt tokens
    output_per_1m: Decimal  # USD per 1M completion tokens


@dataclass(frozen=True)
class PriceCatalog:
    """A loaded catalog; immutable, cheap to share between threads."""

    source: str  # file it was read from, for error messages
    as_of: str  # date its prices were taken ("" when the file does not say)
    devices: Mapping[str, Mapping[PricingModel, Mapping[str, Decimal]]]  # type -> model -> region -> USD/h
    storage: Mapping[str, Mapping[str, StoragePrices]]  # backend -> region -> prices
    llm: Mapping[str, TokenPrices]  # model name -> prices
    planner: PlannerTables = field(default_factory=PlannerTables)  # speeds, serverless, spot (planner)

    @classmethod
    def load(cls, path: Path | None = None) -> PriceCatalog:
        """Read ``path``, or the catalog shipped with rendercost when ``path`` is None.

        Raises ``InvalidRequest`` when the file is missing, is not TOML, or holds a price that is not
        a non-negative number.
        """
        if path is None:
            text = resources.files("rendercost").joinpath("data", SHIPPED_CATALOG).read_text("utf-8")
            source = f"shipped {SHIPPED_CATALOG}"
        else:
            try:
                text = Path(path).read_text("utf-8")
            except OSError as exc:
                raise InvalidRequest(f"price catalog {path}: {exc.strerror}", param="catalog_path") from exc
            source = str(path)
        try:
            raw = tomllib.loads(text, parse_float=Decimal)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidRequest(
                f"price catalog {source} is not valid TOML: {exc}", param="catalog_path"
            ) from exc
        return _parse(raw, source)

    def device_price(self, device_type: str, pricing_model: PricingModel | str, region: str) -> Decimal:
        """USD per device-hour of ``device_type`` bought as ``pricing_model`` in ``region``."""
        models = self.devices.get(device_type)
        if models is None:
            raise InvalidRequest(
                f"price catalog {self.source} has no device type {device_type!r}; "
                f"it has: {', '.join(sorted(self.devices))}",
                param="device_type",
            )
        try:
            model = PricingModel(pricing_model)
        except ValueError:
            raise InvalidRequest(
                f"unknown pricing model {pricing_model!r}; choose one of: {', '.join(PricingModel)}",
                param="pricing_model",
            ) from None
        regions = models.get(model)
        if regions is None:
            raise InvalidRequest(
                f"price catalog {self.source} has no {model} price for device type {device_type!r}",
                param="pricing_model",
            )
        return _in_region(regions, region, f"{model} price for device type {device_type!r}", self.source)

    def storage_prices(self, backend: str, region: str) -> StoragePrices:
        """Both storage prices of ``backend`` in ``region``."""
        regions = self.storage.get(backend)
        if regions is None:
            raise InvalidRequest(
                f"price catalog {self.source} has no storage backend {backend!r}; "
                f"it has: {', '.join(sorted(self.storage))}",
                param="storage_backend",
            )
        return _in_region(regions, region, f"storage price for backend {backend!r}", self.source)

    def storage_price_gb_month(self, backend: str, region: str) -> Decimal:
        """USD per GB-month stored on ``backend`` in ``region``."""
        return self.storage_prices(backend, region).gb_month

    def put_price_per_1000(self, backend: str, region: str) -> Decimal:
        """USD per 1000 PUT requests to ``backend`` in ``region``."""
        return self.storage_prices(backend, region).put_per_1000

    def token_prices(self, model: str) -> TokenPrices:
        """Input and output prices per 1M tokens of LLM ``model``."""
        try:
            return self.llm[model]
        except KeyError:
            raise InvalidRequest(
                f"price catalog {self.source} has no LLM {model!r}; it has: {', '.join(sorted(self.llm))}",
                param="llm_model",
            ) from None


def _in_region(regions: Mapping[str, _T], region: str, what: str, source: str) -> _T:
    try:
        return regions[region]
    except KeyError:
        raise InvalidRequest(
            f"price catalog {source} has no {what} in region {region!r}; "
            f"it has: {', '.join(sorted(regions))}",
            param="region",
        ) from None


def _parse(raw: dict[str, Any], source: str) -> PriceCatalog:
    meta = _table(raw.get("meta", {}), "meta", source)
    devices = {
        device_type: _parse_device(table, f"devices.{device_type}", source)
        for device_type, table in _table(raw.get("devices", {}), "devices", source).items()
    }
    storage = {
        backend: {
            region: StoragePrices(
                gb_month=_priced_field(prices, "gb_month", f"storage.{backend}.{region}", source),
                put_per_1000=_priced_field(prices, "put_per_1000", f"storage.{backend}.{region}", source),
            )
            for region, prices in _table(regions, f"storage.{backend}", source).items()
        }
        for backend, regions in _table(raw.get("storage", {}), "storage", source).items()
    }
    llm = {
        model: TokenPrices(
            input_per_1m=_priced_field(prices, "input_per_1m", f"llm.{model}", source),
            output_per_1m=_priced_field(prices, "output_per_1m", f"llm.{model}", source),
        )
        for model, prices in _table(raw.get("llm", {}), "llm", source).items()
    }
    return PriceCatalog(
        source=source,
        as_of=str(meta.get("as_of", "")),
        devices=devices,
        storage=storage,
        llm=llm,
        planner=parse_planner_tables(raw, source),
    )


def _parse_device(table: Any, where: str, source: str) -> dict[PricingModel, dict[str, Decimal]]:
    by_model: dict[PricingModel, dict[str, Decimal]] = {}
    for key, regions in _table(table, where, source).items():
        if key == "description":
            continue
        try:
            model = PricingModel(key)
        except ValueError:
            raise InvalidRequest(
                f"price catalog {source}: {where}.{key} is not a pricing model ({', '.join(PricingModel)})",
                param="catalog_path",
            ) from None
        by_model[model] = {
            region: _price(value, f"{where}.{key}.{region}", source)
            for region, value in _table(regions, f"{where}.{key}", source).items()
        }
    return by_model


def _table(value: Any, where: str, source: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"price catalog {source}: {where} must be a table", param="catalog_path")
    return value


def _priced_field(table: Any, name: str, where: str, source: str) -> Decimal:
    values = _table(table, where, source)
    if name not in values:
        raise InvalidRequest(f"price catalog {source}: {where} has no {name}", param="catalog_path")
    return _price(values[name], f"{where}.{name}", source)


def _price(value: Any, where: str, source: str) -> Decimal:
    """A price as an exact Decimal: TOML floats arrive as Decimal, integers are widened, strings parsed."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise InvalidRequest(f"price catalog {source}: {where} must be a number", param="catalog_path")
    try:
        price = Decimal(value)
    except ArithmeticError:
        raise InvalidRequest(
            f"price catalog {source}: {where} must be a number", param="catalog_path"
        ) from None
    if not price.is_finite() or price < 0:
        raise InvalidRequest(f"price catalog {source}: {where} must be >= 0", param="catalog_path")
    if price != price.quantize(COST_QUANTUM):
        raise InvalidRequest(
            f"price catalog {source}: {where} has more decimal places than the ledger keeps (10)",
            param="catalog_path",
        )
    return price
