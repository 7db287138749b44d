"""The ``cost_lines`` table (the ledger, append-only) and ``spend_rollup`` (its totals per scope and day).

One row per ``domain.costs.CostLine`` plus who and what it was for (tenant, model, preset, request
class, tags). ``UNIQUE (job_id, image_index, stage)`` makes every write idempotent: a job re-run after a crash
is billed exactly once. Money is ``NUMERIC(20, 10)`` (``db.types.Money``): ``Decimal`` in and out.

``saving_lines``: what routing, batching and the storage lifecycle saved on a cost line, against a
stated reference (``ledger.savings``). ``solo_references``: the measured solo device time per spec and
stage those references come from. ``stored_sizes``: the measured file size per model, image size and
output format that a format saving is measured against.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from rendercost.db.metadata import metadata
from rendercost.db.types import JsonDocument, Money, Quantity, UtcDateTime

cost_lines = Table(
    "cost_lines",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),  # no foreign key: idle and CLI lines have no job row
    Column("image_index", Integer, nullable=False),  # -1 for lines that are no image's (idle)
    Column("stage", String(32), nullable=False),  # domain.costs.Stage
    Column("device_seconds", Float, nullable=False),
    Column("unit_price", Money(), nullable=False),  # USD per unit
    Column("unit", String(32), nullable=False),
    Column("quantity", Quantity(), nullable=False),
    Column("cost", Money(), nullable=False),  # USD billed
    Column("cost_avoided", Money(), nullable=False),  # USD a cache hit or skipped stage saved
    Column("device_type", String(64), nullable=False),
    Column("pricing_model", String(16), nullable=False),  # domain.costs.PricingModel
    Column("batch_id", String(64), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("details", JsonDocument, nullable=False),
    Column("tenant", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("preset", String(64), nullable=False),
    Column("request_class", String(32)),  # the job's priority class; NULL for lines outside a request
    Column("tags", JsonDocument, nullable=False),  # the job's tenant/key tags, for reports and FOCUS
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("job_id", "image_index", "stage", name="uq_cost_lines_job_image_stage"),
    Index("ix_cost_lines_created", "created_at"),
    Index("ix_cost_lines_tenant_created", "tenant", "created_at"),
    Index("ix_cost_lines_model_preset_id", "model", "preset", "id"),  # admission's recent-cost estimate
)

ALL_TENANTS = "*"  # spend_rollup.scope of every tenant's lines together (governance's global budget)

# Spend per scope and UTC day, kept by ``ledger.rollup`` in the transaction that writes the lines (so
# it always equals the SUM of cost_lines.cost over the scope's lines that day); budgets read it instead
# of summing the ledger. Alembic revision 0007_spend_rollup.
spend_rollup = Table(
    "spend_rollup",
    metadata,
    Column("scope", String(128), primary_key=True),  # a tenant (cost_lines.tenant), or ALL_TENANTS
    Column("day", UtcDateTime, primary_key=True),  # UTC midnight starting the day
    Column("cost", Money(), nullable=False),  # exact sum of the scope's lines created that day
    Column("lines", BigInteger, nullable=False),  # how many lines
    Column("updated_at", UtcDateTime, nullable=False),
)

saving_lines = Table(
    "saving_lines",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("job_id", String(64), nullable=False),  # the cost line's job (or cache answer) id
    Column("image_index", Integer, nullable=False),
    Column("stage", String(32), nullable=False),  # the cost line's stage
    Column("mechanism", String(32), nullable=False),  # ledger.savings.Mechanism
    Column("amount", Money(), nullable=False),  # USD saved (signed: a batch share above solo is < 0)
    Column("reference", Money(), nullable=False),  # USD the line would have cost without the mechanism
    Column("details", JsonDocument, nullable=False),  # what the reference is (presets, samples, days)
    Column("tenant", String(128), nullable=False),
    Column("model", String(256), nullable=False),
    Column("preset", String(64), nullable=False),
    Column("request_class", String(32)),
    Column("tags", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("job_id", "image_index", "stage", "mechanism", name="uq_saving_lines_line_mechanism"),
    Index("ix_saving_lines_created", "created_at"),
    Index("ix_saving_lines_tenant_created", "tenant", "created_at"),
)  # one row per (cost line, mechanism) that saved on it; cache savings stay in cost_lines.cost_avoided

solo_references = Table(
    "solo_references",
    metadata,
    Column("model", String(256), nullable=False),
    Column("preset", String(64), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("device_type", String(64), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("samples", Integer, nullable=False),  # solo images measured
    Column("seconds", Float, nullable=False),  # their device-seconds in this stage, summed
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("model", "preset", "width", "height", "device_type", "stage"),
)  # measured device time of images rendered alone (batch of 1, no stage skipped), per spec and stage

stored_sizes = Table(
    "stored_sizes",
    metadata,
    Column("model", String(256), nullable=False),
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("output_format", String(16), nullable=False),  # domain.specs.OutputFormat
    Column("samples", Integer, nullable=False),  # stored images measured
    Column("bytes", BigInteger, nullable=False),  # their file sizes, summed
    Column("updated_at", UtcDateTime, nullable=False),
    PrimaryKeyConstraint("model", "width", "height", "output_format"),
)  # measured size of the stored files (receipt embedded) per model, image size and format
