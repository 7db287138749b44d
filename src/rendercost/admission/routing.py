"""Preset routing: a request class (``draft | review | final``) picks a preset and a priority.

The class comes from the ``X-Render-Class`` header, else the key's ``class`` tag. Each tenant may store
a policy (class -> preset, priority); a class the policy does not name leaves the request unchanged.
E.g. ``{"draft": {"preset": "lightning", "priority": "batch"}}`` sends drafts to the 4-step preset on
batch priority. The class is kept on the job's tags (``class``), so cost lines and reports group by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, select, update

from rendercost.admission.tables import routing_policies
from rendercost.db.clock import Clock, utcnow
from rendercost.domain.specs import Priority, RenderRequest
from rendercost.errors import InvalidRequest

RENDER_CLASSES = ("draft", "review", "final")
CLASS_HEADER = "X-Render-Class"
CLASS_TAG = "class"  # key tag and job tag that carry the class

Rules = dict[str, dict[str, str]]  # class -> {"preset": ..., "priority": ...}


def resolve_class(header: str | None, key_tags: Mapping[str, str]) -> str | None:
    """The request's class: the header wins over the key's tag; ``InvalidRequest`` for an unknown one."""
    value = (header or key_tags.get(CLASS_TAG) or "").strip().lower()
    if not value:
        return None
    if value not in RENDER_CLASSES:
        raise InvalidRequest(
            f"unknown render class {value!r}: use one of {', '.join(RENDER_CLASSES)}", param=CLASS_HEADER
        )
    return value


def check_rules(rules: Mapping[str, Any]) -> Rules:
    """Validate a policy: known classes, a preset name, a known priority."""
    checked: Rules = {}
    for name, rule in rules.items():
        if name not in RENDER_CLASSES:
            raise InvalidRequest(f"unknown render class {name!r} in routing policy", param="rules")
        if not isinstance(rule, Mapping) or not isinstance(rule.get("preset"), str) or not rule["preset"]:
            raise InvalidRequest(f"routing rule for {name!r} needs a preset name", param="rules")
        priority = str(rule.get("priority", Priority.INTERACTIVE))
        if priority not in {str(p) for p in Priority}:
            raise InvalidRequest(f"routing rule for {name!r}: unknown priority {priority!r}", param="rules")
        checked[name] = {"preset": str(rule["preset"]), "priority": priority}
    return checked


def route(
    request: RenderRequest, render_class: str | None, rules: Mapping[str, Mapping[str, str]]
) -> RenderRequest:
    """``request`` with the preset and priority the policy gives ``render_class`` (unchanged if none)."""
    rule = rules.get(render_class or "")
    if rule is None:
        return request
    spec = replace(request.spec, preset=rule["preset"])
    return replace(request, spec=spec, priority=Priority(rule["priority"]))


class RoutingStore:
    """Routing policies per tenant."""

    def __init__(self, engine: Engine, *, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def set(self, tenant: str, rules: Mapping[str, Any]) -> Rules:
        checked = check_rules(rules)
        now = self._clock()
        with self._engine.begin() as conn:
            changed = conn.execute(
                update(routing_policies)
                .where(routing_policies.c.tenant == tenant)
                .values(rules=checked, updated_at=now)
            ).rowcount
            if not changed:
                conn.execute(routing_policies.insert().values(tenant=tenant, rules=checked, updated_at=now))
        return checked

    def get(self, tenant: str) -> Rules:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(routing_policies.c.rules).where(routing_policies.c.tenant == tenant)
            ).scalar_one_or_none()
        return check_rules(found or {})
