"""Storage lifecycle at admission: how long a request's images are kept, and in which format.

Each request class (``draft | review | final``, see ``admission.routing``) has a retention and may have
an output format (``settings.artifact_classes``; by default drafts a day as WebP, reviews a week as
WebP, finals 30 days as PNG); a request without a class gets ``artifact_retention_days``. A request may
ask for its own retention (``retention_days``): it is granted as asked, up to
``artifact_max_retention_days`` (longer: ``InvalidRequest`` ``retention_too_long``, nothing written).
The class's format applies only when the door left the format open (the client named none), and is
chosen before the exact-cache lookup, whose key includes the format. The worker prices the storage line
for the days granted (``RenderRequest.retention.granted_days``) and the artifact rows expire then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from rendercost.domain.controls import DEFAULT_RETENTION_DAYS
from rendercost.domain.specs import OutputFormat, RenderRequest
from rendercost.errors import InvalidRequest
from rendercost.settings import Settings

RETENTION_PARAM = "retention_days"


@dataclass(frozen=True)
class ClassStorage:
    """One class's storage: days kept, and the format used when the request names none."""

    retention_days: int
    output_format: OutputFormat | None = None


@dataclass(frozen=True)
class StoragePolicy:
    """Retention and format per request class, the default for requests without one, and the cap."""

    classes: Mapping[str, ClassStorage] = field(default_factory=dict)
    default_days: int = DEFAULT_RETENTION_DAYS
    max_days: int = 365

    @classmethod
    def from_settings(cls, settings: Settings) -> StoragePolicy:
        classes: dict[str, ClassStorage] = {
            name: ClassStorage(
                rule.retention_days,
                OutputFormat.parse(rule.output_format) if rule.output_format is not None else None,
            )
            for name, rule in settings.artifact_classes.items()
        }
        return cls(classes, settings.artifact_retention_days, settings.artifact_max_retention_days)

    def days_for(self, render_class: str | None) -> int:
        """The retention a request of ``render_class`` gets when it asks for none."""
        rule = self.classes.get(render_class or "")
        return rule.retention_days if rule is not None else self.default_days

    def apply(self, request: RenderRequest, render_class: str | None) -> RenderRequest:
        """``request`` with its retention granted and, when its format is open, its class's format.
        ``InvalidRequest`` (``retention_too_long``) for an ask above ``max_days``."""
        check_retention(request.retention.asked_days, self.max_days)
        asked = request.retention.asked_days
        days = asked if asked is not None else self.days_for(render_class)
        rule = self.classes.get(render_class or "")
        spec = request.spec
        if request.retention.format_open and rule is not None and rule.output_format is not None:
            spec = replace(spec, output_format=rule.output_format)
        return replace(request, spec=spec, retention=replace(request.retention, days=days))


def check_retention(days: int | None, max_days: int, *, param: str = RETENTION_PARAM) -> None:
    """``InvalidRequest`` unless ``days`` is None or within ``1 .. max_days``."""
    if days is None:
        return
    if days < 1:
        raise InvalidRequest(f"{param} must be at least 1 day", param=param)
    if days > max_days:
        raise InvalidRequest(
            f"{param} {days} is above the longest retention allowed here ({max_days} days)",
            param=param,
            code="retention_too_long",
        )
