"""tools/lock.py leaves torch and what only torch needs out of the lock, and the lock itself is in order."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[3]

COMPILED = """\
#    make lock
#
filelock==4.3.1 \\
    --hash=sha256:aa
    # via
    #   -c constraints.txt
    #   huggingface-hub
    #   torch
mpmath==1.3.0 \\
    --hash=sha256:bb
    # via sympy
numpy==2.4.6 \\
    --hash=sha256:cc
    # via rendercost (pyproject.toml)
sympy==1.14.0 \\
    --hash=sha256:dd
    # via
    #   -c constraints.txt
    #   torch
torch==2.13.0 \\
    --hash=sha256:ee
    # via
    #   accelerate
    #   rendercost (pyproject.toml)

# The following packages are considered to be unsafe in a requirements file:
setuptools==84.2.1 \\
    --hash=sha256:ff
    # via
    #   rendercost (pyproject.toml::build-system.requires)
    #   torch
"""


def _lock_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_tool", ROOT / "tools" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_torch_and_its_own_dependencies_are_left_out() -> None:
    text, dropped = _lock_tool().strip_torch(COMPILED)
    assert dropped == {"torch", "sympy", "mpmath"}  # mpmath only through sympy, sympy only through torch
    pins = re.findall(r"^([a-z0-9-]+)==", text, flags=re.MULTILINE)
    assert pins == ["filelock", "numpy", "setuptools"]  # also needed by others: kept
    assert "--hash=sha256:ee" not in text and "--hash=sha256:aa" in text


def test_the_committed_lock_pins_every_dependency_with_hashes_and_no_torch() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pins = {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9._-]+)==(\S+) \\$", lock, re.M)}
    assert "torch" not in pins
    blocks = re.split(r"^(?=[A-Za-z0-9])", lock, flags=re.MULTILINE)[1:]
    assert all("--hash=sha256:" in block for block in blocks)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["dev"]]:
        name = re.split(r"[\[<>=]", requirement, maxsplit=1)[0].lower()
        if name != "torch":
            assert name in pins, f"{name} is not in requirements.lock: run make lock"
            low = re.search(r"(?:>=|==)([0-9][^,]*)", requirement)
            assert low is not None and low.group(1) == pins[name], f"{requirement}: lock has {pins[name]}"
