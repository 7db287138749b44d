"""Budget periods: UTC calendar days or months (a module of its own: the CLI's options name it cheaply)."""

from __future__ import annotations

from enum import StrEnum


class Period(StrEnum):
    DAY = "day"  # UTC calendar day
    MONTH = "month"  # UTC calendar month
