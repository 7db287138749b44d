"""`rendercost worker`'s flags: bad input is one readable line and exit 2, before anything starts;
the supervisor's child command lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rendercost.cli import app
from rendercost.cli.worker_supervisor import child_command, resolve_devices


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--priorities", "urgent"], "--priorities: unknown priority urgent"),
        (["--priorities", ""], "--priorities: no priorities given"),
        (["--device", "gpu0"], "unknown device 'gpu0'"),
        (["--devices", "cpu,tpu"], "unknown device 'tpu'"),
        (["--device", "cpu", "--devices", "cpu,cpu"], "not both"),
        (["--metrics-bind", "nowhere"], "worker_metrics_bind"),
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "worker", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "rendercost.db").exists()  # nothing was started


def test_each_device_gets_its_own_child_and_metrics_port() -> None:
    command = child_command(["--config", "c.toml"], ["--priorities", "batch"], "0.0.0.0:9100")
    assert command(0, "cuda:0") == [
        sys.executable, "-m", "rendercost.cli", "--config", "c.toml", "worker", "--device", "cuda:0",
        "--priorities", "batch", "--metrics-bind", "0.0.0.0:9100",
    ]  # fmt: skip
    assert command(3, "cuda:3")[-1] == "0.0.0.0:9103"
    assert "--metrics-bind" not in child_command([], [], None)(1, "cpu")


def test_a_device_list_is_taken_as_given() -> None:
    assert resolve_devices("cpu, cpu") == ["cpu", "cpu"]
    with pytest.raises(ValueError, match="--devices needs"):
        resolve_devices(" , ")
