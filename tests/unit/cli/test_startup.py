"""``rendercost --help``, ``--version`` and every command's ``--help`` import none of the heavy packages.

Each runs in a fresh interpreter (this test process has imported torch long ago), which then reports the
exit codes and which of the heavy modules ended up in ``sys.modules``. No timing: an import is the
regression, whatever this machine's speed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import rendercost

HEAVY = ("torch", "diffusers", "transformers", "fastapi", "uvicorn", "rendercost.execution", "rendercost.api")

COMMANDS = (
    ("--help",),
    ("--version",),
    ("render", "--help"),
    ("batch", "--help"),
    ("worker", "--help"),
    ("serve", "--help"),
    ("report", "--help"),
    ("anomalies", "--help"),
    ("models", "--help"),
    ("models", "list", "--help"),
    ("models", "build-tiny", "--help"),
    ("keys", "create", "--help"),
    ("keys", "list", "--help"),
    ("keys", "revoke", "--help"),
    ("export", "focus", "--help"),
    ("budgets", "set", "--help"),
    ("budgets", "list", "--help"),
    ("budgets", "show", "--help"),
    ("budgets", "override", "--help"),
    ("config", "show", "--help"),
    ("plan", "--help"),
)

_PROBE = """
import contextlib, io, json, sys
from rendercost.cli import app
heavy, commands = json.loads(sys.argv[1])
codes, out = [], io.StringIO()
for args in commands:
    with contextlib.redirect_stdout(out):
        try:
            app(args, prog_name="rendercost")
        except SystemExit as exit:
            codes.append(exit.code or 0)
loaded = sorted(name for name in heavy if name in sys.modules)
print(json.dumps({"codes": codes, "loaded": loaded, "output": out.getvalue()}))
"""


def _probe(commands: tuple[tuple[str, ...], ...]) -> dict[str, object]:
    source_root = str(Path(rendercost.__file__).parent.parent)  # the tree under test, not an install
    env = {**os.environ, "PYTHONPATH": source_root}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([HEAVY, commands])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_help_and_version_import_no_heavy_package() -> None:
    result = _probe((("--help",), ("--version",)))
    assert result["codes"] == [0, 0]
    assert result["loaded"] == [], f"rendercost --help/--version imported {result['loaded']}"
    output = str(result["output"])
    assert f"rendercost {rendercost.__version__}\n" in output
    for command in ("render", "batch", "worker", "serve", "report", "models", "keys", "budgets"):
        assert command in output


def test_every_command_help_works_without_heavy_imports() -> None:
    result = _probe(COMMANDS)
    assert result["codes"] == [0] * len(COMMANDS)
    assert result["loaded"] == [], f"a command's --help imported {result['loaded']}"


def test_shell_completion_completes_command_names() -> None:
    """The completion protocol the installed script speaks (``--install-completion`` writes the script;
    which shell it detects depends on the caller, so the protocol itself is what is tested)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(rendercost.__file__).parent.parent),
        "_RENDERCOST_COMPLETE": "complete_bash",
        "COMP_WORDS": "rendercost ren",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", "from rendercost.cli import app; app(prog_name='rendercost')"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.stdout.split() == ["render"], done.stdout + done.stderr
