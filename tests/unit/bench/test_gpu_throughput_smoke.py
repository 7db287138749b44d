"""bench/gpu_throughput.py: its planning logic in-process, and the whole --tiny run as a subprocess."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "bench" / "gpu_throughput.py"
COLUMNS = (
    "config",
    "shape",
    "batch",
    "images/s",
    "s/stage enc/den/dec",
    "peak mem",
    "TFLOP/s",
    "% ceil",
    "drift",
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_throughput", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_throughput"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_config_specs_add_and_remove_switches(bench: ModuleType) -> None:
    from rendercost.settings import SpeedSwitches

    default = SpeedSwitches()

    assert bench.active_tokens(bench.parse_config("plain", default), 1024) == ()
    assert bench.active_tokens(bench.parse_config("sdpa+cl", default), 1024) == ("sdpa", "cl")
    assert bench.active_tokens(bench.parse_config("default+compile", default), 1024) == (
        "sdpa",
        "cl",
        "qkv",
        "compile",
    )
    no_tiles = bench.parse_config("default-tile", default)
    assert not no_tiles.vae_tiling and no_tiles.fuse_qkv
    with pytest.raises(SystemExit, match="unknown switch 'turbo'"):
        bench.parse_config("default+turbo", default)


def test_size_rules_decide_which_switches_act(bench: ModuleType) -> None:
    from rendercost.settings import SpeedSwitches

    switches = SpeedSwitches(int8=True, vae_tiling_min_pixels=1536 * 1536, int8_max_pixels=2048 * 2048)

    assert "tile" not in bench.active_tokens(switches, 1024)
    assert {"tile", "int8"} <= set(bench.active_tokens(switches, 2048))
    assert "int8" not in bench.active_tokens(switches, 2304)


def test_plan_measures_each_distinct_row_once(bench: ModuleType) -> None:
    from rendercost.settings import SpeedSwitches

    default = SpeedSwitches(channels_last=False, fuse_qkv=False)  # what the server runs on CPU
    shapes = bench.make_shapes(["lightning", "large"], 1024, None)

    specs = ["plain", "default", "default-tile", "sdpa", "sdpa+cl"]
    planned = bench.make_plan(specs, shapes, (1, 2), default, False)

    rows = {(p.spec, s.name, b) for p in planned for s, b, _ in p.rows}
    # At 1024 px tiling is idle, so default, default-tile and sdpa are one row, measured once.
    assert {spec for spec, shape, b in rows if shape == "lightning" and b == 1} == {
        "plain",
        "default",
        "sdpa+cl",
    }
    # At 2048 px tiling acts: default and default-tile differ; other configs skip the large shape.
    assert {spec for spec, shape, _ in rows if shape == "large"} == {"plain", "default", "default-tile"}
    assert {b for spec, shape, b in rows if shape == "large"} == {1}


def test_a_gpu_profile_refuses_a_machine_without_cuda(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="--tiny"):
        bench.main(["--quick"])


@pytest.mark.slow
def test_tiny_run_prints_the_gpu_table_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"

    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("config"))
    assert all(column in header for column in COLUMNS)
    assert "random weights" in done.stdout and "bf16 matmul ceiling" in done.stdout
    result = json.loads(out.read_text())
    assert result["model"] == "sdxl-tiny" and result["ceiling_tflops"] > 0
    measured = [row for row in result["rows"] if row["status"] == "ok"]
    assert {row["shape"] for row in measured} == {"speed", "lightning", "large"}
    assert {row["batch"] for row in measured} == {1, 2}
    for row in measured:
        assert row["images_per_s"] > 0 and row["tflops"] > 0 and row["pct_ceiling"] > 0
        assert min(row["encode_s"], row["denoise_s"], row["decode_s"]) > 0
    plain = [row for row in measured if row["config"] == "plain"]
    assert plain and all(row["drift_latents"] is None for row in plain)  # one repeat: no run-to-run figure
    others = [row for row in measured if row["config"] != "plain"]
    assert others and all(0 < row["drift_latents"] < 0.2 for row in others)  # other kernels, same maths
    assert any(row["is_default"] for row in measured)
    assert any(row["config"].endswith("tile") and row["shape"] == "large" for row in measured)
    skipped = {row["config"]: row["status"] for row in result["rows"] if row["status"] != "ok"}
    assert "fp8" in skipped.get("sdpa+cl+qkv+fp8", "")  # no float8 on a CPU, and the table says so
    # The FLOP count of the tiny UNet is the same formula that gives SDXL-base 6.76 TFLOP at 1024 px.
    assert result["flops"]["64"]["unet_sample"] > 0
