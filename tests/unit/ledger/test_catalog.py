from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from rendercost.domain.costs import PricingModel
from rendercost.errors import InvalidRequest
from rendercost.ledger.catalog import PriceCatalog

DEVICES = ("cpu", "t4", "l4", "a10g", "a100-40gb", "a100-80gb", "h100", "h200")
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")


@pytest.fixture(scope="module")
def shipped() -> PriceCatalog:
    return PriceCatalog.load()


def test_shipped_catalog_prices_every_device_model_and_region(shipped: PriceCatalog) -> None:
    for device in DEVICES:
        for model in PricingModel:
            for region in REGIONS:
                price = shipped.device_price(device, model, region)
                assert isinstance(price, Decimal)
                assert price > 0, (device, model, region)


def test_shipped_catalog_orders_pricing_models_sensibly(shipped: PriceCatalog) -> None:
    for device in DEVICES:
        for region in REGIONS:
            on_demand = shipped.device_price(device, "on_demand", region)
            assert shipped.device_price(device, "spot", region) < on_demand
            assert shipped.device_price(device, "reserved", region) < on_demand


def test_known_list_prices_parse_exactly(shipped: PriceCatalog) -> None:
    assert shipped.device_price("h100", PricingModel.ON_DEMAND, "us-east-1") == Decimal("6.88")
    assert shipped.device_price("l4", PricingModel.ON_DEMAND, "us-east-1") == Decimal("0.8048")
    assert shipped.device_price("a100-40gb", "on_demand", "us-west-2") == Decimal("21.957642") / 8
    assert shipped.as_of == "2025-11-15"


def test_storage_and_token_prices(shipped: PriceCatalog) -> None:
    for region in REGIONS:
        assert shipped.storage_price_gb_month("s3", region) == Decimal("0.023")
        assert shipped.put_price_per_1000("s3", region) == Decimal("0.005")
        assert shipped.put_price_per_1000("local", region) == Decimal(0)
        assert isinstance(shipped.storage_price_gb_month("local", region), Decimal)
    prices = shipped.token_prices("gpt-4o-mini")
    assert (prices.input_per_1m, prices.output_per_1m) == (Decimal("0.15"), Decimal("0.60"))


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda c: c.device_price("tpu", "on_demand", "us-east-1"), "no device type 'tpu'"),
        (lambda c: c.device_price("h100", "on_demand", "mars-1"), "in region 'mars-1'"),
        (lambda c: c.device_price("h100", "lease", "us-east-1"), "unknown pricing model 'lease'"),
        (lambda c: c.storage_price_gb_month("tape", "us-east-1"), "no storage backend 'tape'"),
        (lambda c: c.put_price_per_1000("s3", "mars-1"), "in region 'mars-1'"),
        (lambda c: c.token_prices("gpt-0"), "no LLM 'gpt-0'"),
    ],
)
def test_missing_prices_name_what_is_missing(
    shipped: PriceCatalog, call: Callable[[PriceCatalog], object], fragment: str
) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        call(shipped)


def test_own_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(
        '[devices.h100.on_demand]\nus-east-1 = 2.10\n[devices.h100.spot]\nus-east-1 = "1.05"\n'
        "[storage.local.us-east-1]\ngb_month = 0\nput_per_1000 = 0\n"
    )
    catalog = PriceCatalog.load(path)
    assert catalog.device_price("h100", "on_demand", "us-east-1") == Decimal("2.10")
    assert catalog.device_price("h100", "spot", "us-east-1") == Decimal("1.05")
    with pytest.raises(InvalidRequest, match="no reserved price for device type 'h100'"):
        catalog.device_price("h100", "reserved", "us-east-1")
    assert catalog.storage_price_gb_month("local", "us-east-1") == 0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[devices.h100.on_demand]\nus-east-1 = -1.0\n", "must be >= 0"),
        ("[devices.h100.on_demand]\nus-east-1 = true\n", "must be a number"),
        ("[devices.h100.on_demand]\nus-east-1 = 0.00000000001\n", "more decimal places"),
        ("[devices.h100.rental]\nus-east-1 = 1.0\n", "not a pricing model"),
        ("[storage.s3.us-east-1]\ngb_month = 0.02\n", "has no put_per_1000"),
        ("[devices.h100\n", "not valid TOML"),
    ],
)
def test_bad_catalog_files_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidRequest, match=fragment):
        PriceCatalog.load(path)


def test_missing_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match=r"nope\.toml"):
        PriceCatalog.load(tmp_path / "nope.toml")
