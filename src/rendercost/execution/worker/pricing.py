"""How a worker prices what it renders and stores: the ledger's pricing functions, bound to one
machine's catalog entry (device type, pricing model, region) and one storage backend."""

from __future__ import annotations

from dataclasses import dataclass

from rendercost.domain.batch import BatchItem, BatchPlan, RenderResult
from rendercost.domain.costs import CostLine, PricingModel
from rendercost.domain.specs import OutputFormat
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import price_batch, price_storage
from rendercost.settings import Settings


@dataclass(frozen=True)
class WorkerPricing:
    """The prices one worker charges at."""

    catalog: PriceCatalog  # loaded price catalog
    device_type: str  # catalog device this worker runs as, e.g. "cpu", "h100"
    pricing_model: PricingModel  # how that device is bought
    region: str  # catalog region
    storage_backend: str = "local"  # catalog storage backend the artifacts go to

    @classmethod
    def from_settings(cls, settings: Settings, *, storage_backend: str = "local") -> WorkerPricing:
        """Load the catalog the settings name and check it prices this worker (``InvalidRequest`` if
        not), so a misconfigured worker stops at start instead of failing every job."""
        pricing = cls(
            catalog=PriceCatalog.load(settings.catalog_path),
            device_type=settings.device_type,
            pricing_model=PricingModel(settings.pricing_model),
            region=settings.region,
            storage_backend=storage_backend,
        )
        pricing.check()
        return pricing

    def check(self) -> None:
        """Raise ``InvalidRequest`` unless the catalog has every price this worker needs."""
        self.catalog.device_price(self.device_type, self.pricing_model, self.region)
        self.catalog.storage_prices(self.storage_backend, self.region)

    def device_lines(self, plan: BatchPlan, result: RenderResult) -> list[tuple[CostLine, ...]]:
        """Per plan item, its share of the batch's device time, stage by stage; a stage a cache
        answered records what it would have cost (``result.avoided_seconds``)."""
        return price_batch(
            plan,
            result,
            catalog=self.catalog,
            device_type=self.device_type,
            pricing_model=self.pricing_model,
            region=self.region,
            avoided_seconds=result.avoided_seconds,
        )

    def storage_line(
        self, item: BatchItem, size_bytes: int, retention_days: int, output_format: OutputFormat
    ) -> CostLine:
        """The storage line of one stored image of ``size_bytes`` written as ``output_format``, kept the
        ``retention_days`` its request was granted at admission (``RenderRequest.retention.granted_days``)."""
        return price_storage(
            item.job_id,
            item.image_index,
            size_bytes,
            catalog=self.catalog,
            backend=self.storage_backend,
            region=self.region,
            retention_days=retention_days,
            output_format=str(output_format),
        )
