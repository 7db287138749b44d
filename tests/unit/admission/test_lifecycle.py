"""The storage policy admission applies: retention per class, the ask up to the cap, the class's format
only when the door left the format open; and the granted retention survives the job payload."""

from __future__ import annotations

import pytest

from rendercost.admission.lifecycle import ClassStorage, StoragePolicy
from rendercost.domain.controls import DEFAULT_RETENTION_DAYS, Retention
from rendercost.domain.specs import OutputFormat, RenderRequest, RenderSpec
from rendercost.errors import InvalidRequest
from rendercost.settings import Settings

POLICY = StoragePolicy(
    {"draft": ClassStorage(1, OutputFormat.WEBP), "final": ClassStorage(30)}, default_days=14, max_days=100
)


def request(asked: int | None = None, *, format_open: bool = True) -> RenderRequest:
    return RenderRequest(
        spec=RenderSpec(prompt="a chair"), retention=Retention(asked, format_open=format_open)
    )


def test_each_class_gets_its_days_and_format() -> None:
    draft = POLICY.apply(request(), "draft")
    assert (draft.retention.days, draft.spec.output_format) == (1, OutputFormat.WEBP)
    final = POLICY.apply(request(), "final")
    assert (final.retention.days, final.spec.output_format) == (30, OutputFormat.PNG)
    unclassed = POLICY.apply(request(), None)
    assert (unclassed.retention.days, unclassed.spec.output_format) == (14, OutputFormat.PNG)


def test_an_asked_format_and_an_asked_retention_win() -> None:
    asked = POLICY.apply(request(90, format_open=False), "draft")
    assert (asked.retention.days, asked.retention.asked_days, asked.spec.output_format) == (
        90,
        90,
        OutputFormat.PNG,
    )


@pytest.mark.parametrize(("days", "code"), [(101, "retention_too_long"), (0, "invalid_request")])
def test_asks_outside_the_limits_are_refused(days: int, code: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        POLICY.apply(request(days), "draft")
    assert (refused.value.code, refused.value.param) == (code, "retention_days")


def test_the_defaults_come_from_the_settings() -> None:
    policy = StoragePolicy.from_settings(Settings(env_file=None, secrets_dir=None))
    assert policy.days_for("draft") == 1 and policy.classes["draft"].output_format is OutputFormat.WEBP
    assert policy.days_for("review") == 7 and policy.days_for("final") == 30
    assert policy.days_for(None) == 30 and policy.max_days == 365


def test_the_retention_round_trips_and_old_payloads_get_the_old_default() -> None:
    granted = POLICY.apply(request(5), "draft")
    assert RenderRequest.from_dict(granted.to_dict()) == granted
    legacy = granted.to_dict()
    del legacy["retention"]
    assert RenderRequest.from_dict(legacy).retention.granted_days == DEFAULT_RETENTION_DAYS
