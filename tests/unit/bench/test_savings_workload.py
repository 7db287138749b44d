"""bench/savings_workload.py: the night is seeded, has the mix its docstring states, and repeats and
paraphrases point back at requests asked earlier."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "savings_workload.py"


@pytest.fixture(scope="module")
def workload() -> ModuleType:
    spec = importlib.util.spec_from_file_location("savings_workload", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["savings_workload"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_the_same_seed_gives_the_same_night(workload: ModuleType) -> None:
    assert workload.night(200, seed=5) == workload.night(200, seed=5)
    assert workload.night(200, seed=5) != workload.night(200, seed=6)


def test_the_mix_is_the_stated_one(workload: ModuleType) -> None:
    requests = workload.night(4000, seed=1)
    kinds = Counter(request.kind for request in requests)
    assert kinds["repeat"] / len(requests) == pytest.approx(workload.REPEAT_SHARE, abs=0.02)
    assert kinds["paraphrase"] / len(requests) == pytest.approx(workload.PARAPHRASE_SHARE, abs=0.02)
    new = [request for request in requests if request.kind == "new"]
    classes = Counter(request.render_class for request in new)
    for name, weight in workload.CLASSES:
        assert classes[name] / len(new) == pytest.approx(weight / 100, abs=0.03)
    sizes = Counter(request.size for request in new)
    assert set(sizes) == {size for size, _ in workload.SIZES}


def test_repeats_and_paraphrases_follow_what_they_echo(workload: ModuleType) -> None:
    requests = workload.night(600, seed=3)
    for request in requests:
        if request.kind == "new":
            assert request.of is None
            continue
        first = requests[request.of]
        assert request.position - first.position >= workload.MIN_GAP
        assert (request.seed, request.render_class, request.size) == (
            first.seed,
            first.render_class,
            first.size,
        )
        if request.kind == "repeat":
            assert request.prompt == first.prompt
        else:
            assert request.prompt != first.prompt and request.shot == first.shot
