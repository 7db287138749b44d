"""Column types that behave the same on SQLite and PostgreSQL.

- ``UtcDateTime``: timezone-aware UTC in and out. PostgreSQL stores ``timestamptz``; SQLite stores naive
  UTC text in SQLAlchemy's fixed-width format, so text order is time order and comparisons work.
- ``ExactDecimal``: ``Decimal`` in and out, never a float. PostgreSQL stores ``NUMERIC(p, s)``; SQLite
  stores the decimal's text (SQLite's NUMERIC would keep a binary float). Values are quantized to the
  scale in Python before binding, so both engines hold identical numbers. ``Money`` refuses values that
  would need rounding; ``Quantity`` rounds half-even.
- ``exact_sum(column)``: ``SUM`` that stays exact on both engines (on SQLite it calls the ``decimal_sum``
  aggregate that ``db.engine`` registers on every connection).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import ReturnTypeFromArgs
from sqlalchemy.types import TypeDecorator, TypeEngine

DECIMAL_PRECISION = 60  # Decimal context digits for quantizing and summing; above any column's precision

JsonDocument = JSON().with_variant(JSONB(), "postgresql")  # JSON text on SQLite, JSONB on PostgreSQL


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out; naive datetimes are refused (they hide a time-zone bug)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: rendercost stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ExactDecimal(TypeDecorator[Decimal]):
    """``Decimal`` with ``precision`` digits, ``scale`` of them after the point, on both engines.

    With ``strict`` a value with more than ``scale`` decimal places raises ``ValueError`` instead of
    being rounded. A value too large for ``precision`` always raises ``ValueError``.
    """

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int, *, strict: bool) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision = precision
        self.scale = scale
        self.strict = strict
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(self.precision + 2))  # digits, sign and point
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Decimal | str | None:
        if value is None:
            return None
        exact = self.normalize(value)
        return format(exact, "f") if dialect.name == "sqlite" else exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        with localcontext() as ctx:
            ctx.prec = DECIMAL_PRECISION
            return Decimal(str(value)).quantize(self._quantum)

    def normalize(self, value: Decimal) -> Decimal:
        """``value`` quantized to the scale; raises ``ValueError`` where the column cannot hold it."""
        if not isinstance(value, Decimal | int) or isinstance(value, bool):
            raise ValueError(f"{value!r} is not a Decimal; money and quantities are never floats")
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError(f"{value!r} is not a finite decimal")
        too_large = ValueError(f"{value} does not fit NUMERIC({self.precision}, {self.scale})")
        if number.adjusted() >= self.precision - self.scale:
            raise too_large
        with localcontext() as ctx:
            ctx.prec = DECIMAL_PRECISION
            exact = number.quantize(self._quantum, rounding=ROUND_HALF_EVEN)
        if self.strict and exact != number:
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        if exact.adjusted() >= self.precision - self.scale:  # rounding carried into a new digit
            raise too_large
        return exact


class Money(ExactDecimal):
    """USD amounts: NUMERIC(20, 10), never rounded on the way in."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(20, 10, strict=True)


class Quantity(ExactDecimal):
    """Units consumed (hours, GB-months, millions of tokens): NUMERIC(30, 18), rounded half-even."""

    cache_ok = True

    def __init__(self) -> None:
        super().__init__(30, 18, strict=False)


class exact_sum(ReturnTypeFromArgs[Decimal]):  # lower case, like the SQL functions
    """``SUM(column)`` for an ``ExactDecimal`` column, exact on both engines; NULL over no rows."""

    inherit_cache = True


@compiles(exact_sum)
def _sum_default(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum({compiler.process(element.clauses, **kw)})"


@compiles(exact_sum, "sqlite")
def _sum_sqlite(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"decimal_sum({compiler.process(element.clauses, **kw)})"


class DecimalSum:
    """The ``decimal_sum`` SQLite aggregate: sums decimal text exactly and returns text."""

    def __init__(self) -> None:
        self._total: Decimal | None = None

    def step(self, value: str | int | None) -> None:
        if value is None:
            return
        with localcontext() as ctx:
            ctx.prec = DECIMAL_PRECISION
            self._total = (self._total or Decimal(0)) + Decimal(str(value))

    def finalize(self) -> str | None:
        return None if self._total is None else format(self._total, "f")
