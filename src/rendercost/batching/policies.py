"""Ordering policies for the batch planner: which waiting image is planned first.

A policy maps an image's priority class and age to a sort key; the planner sorts by that key and then
by arrival, so equal keys keep queue order. Build one with ``create_policy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rendercost.domain.specs import Priority


class OrderPolicy(Protocol):
    """Ranks waiting work; lower ranks are planned first."""

    def rank(self, priority: Priority, submitted_at: float, now: float) -> int: ...


@dataclass(frozen=True)
class PriorityWithAging:
    """Interactive work before batch work; batch work waiting ``aging_seconds`` or longer is planned
    as interactive, so a steady stream of interactive jobs cannot starve it."""

    aging_seconds: float  # age (seconds since it was queued) at which batch work ranks as interactive

    def rank(self, priority: Priority, submitted_at: float, now: float) -> int:
        if priority is Priority.INTERACTIVE or now - submitted_at >= self.aging_seconds:
            return 0
        return 1


@dataclass(frozen=True)
class Fifo:
    """Plain arrival order; priority classes are ignored."""

    def rank(self, priority: Priority, submitted_at: float, now: float) -> int:
        return 0


POLICY_NAMES = ("priority", "fifo")


def create_policy(name: str, *, aging_seconds: float) -> OrderPolicy:
    """The policy called ``name``; ``ValueError`` naming the valid ones for anything else."""
    if name == "priority":
        if aging_seconds < 0:
            raise ValueError("aging_seconds must not be negative")
        return PriorityWithAging(aging_seconds)
    if name == "fifo":
        return Fifo()
    raise ValueError(f"unknown batching policy {name!r}; choose one of: {', '.join(POLICY_NAMES)}")
