"""The fake runner and the wait helpers that tests and benchmarks share."""

from __future__ import annotations

import io
import threading
from dataclasses import replace

import pytest
from PIL import Image

from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.costs import Stage
from rendercost.domain.jobs import JobState
from rendercost.domain.specs import OutputFormat, RenderSpec
from rendercost.errors import InvalidRequest
from rendercost.testing.runner import FakeRunner, TimedRunner
from rendercost.testing.waiting import wait_for_job, wait_until


def _plan(*seeds: int, output_format: OutputFormat = OutputFormat.PNG) -> BatchPlan:
    spec = RenderSpec(prompt="a lamp", width=64, height=48, output_format=output_format)
    items = tuple(BatchItem("j1", i, replace(spec, seed=seed)) for i, seed in enumerate(seeds))
    return BatchPlan("b1", items)


@pytest.mark.parametrize(
    ("output_format", "pil_format", "media_type"),
    [(OutputFormat.PNG, "PNG", "image/png"), (OutputFormat.WEBP, "WEBP", "image/webp"),
     (OutputFormat.JPEG, "JPEG", "image/jpeg")],
)  # fmt: skip
def test_fake_runner_paints_real_images_in_the_specs_format_and_size(
    output_format: OutputFormat, pil_format: str, media_type: str
) -> None:
    runner = FakeRunner(stage_seconds={Stage.DENOISE: 0.5})
    result = runner.run(_plan(1, 2, output_format=output_format))
    assert [image.media_type for image in result.images] == [media_type, media_type]
    with Image.open(io.BytesIO(result.images[0].data)) as first:
        assert (first.format, first.size) == (pil_format, (64, 48))
    assert result.images[0].data != result.images[1].data  # seeds paint different colours
    assert result.stage_seconds == {Stage.DENOISE: 0.5} and runner.calls == [2]


def test_fake_runner_hook_runs_first_and_a_failure_is_recorded_but_not_counted() -> None:
    seen: list[int] = []
    runner = FakeRunner(before=lambda plan, _on_step: seen.append(plan.size))
    runner.run(_plan(1))
    runner.fail_with = InvalidRequest("refused")
    with pytest.raises(InvalidRequest):
        runner.run(_plan(1, 2))
    assert seen == [1, 2] and len(runner.plans) == 2 and runner.calls == [1]


def test_timed_runner_keeps_results_and_seconds() -> None:
    timed = TimedRunner(FakeRunner(image_size=(8, 8)))
    result = timed.run(_plan(3))
    assert timed.results == [result] and len(timed.call_seconds) == 1 and timed.seconds >= 0


def test_wait_until_returns_the_value_once_it_holds() -> None:
    flag = threading.Event()
    threading.Timer(0.05, flag.set).start()
    assert wait_until(lambda: flag.is_set(), what="the flag", timeout_s=5) is True


def test_wait_until_names_what_it_waited_for() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for the flag"):
        wait_until(lambda: False, what="the flag", timeout_s=0.05)


def test_wait_for_job_reads_api_json_and_names_the_last_state() -> None:
    states = iter(["queued", "running", "succeeded"])
    assert wait_for_job(lambda: {"state": next(states)}, timeout_s=5)["state"] == "succeeded"
    with pytest.raises(AssertionError, match=r"job_1 to be succeeded .*\(last state: running\)"):
        wait_for_job(lambda: {"state": "running"}, what="job_1", states={JobState.SUCCEEDED}, timeout_s=0.05)
