"""`rendercost render --out` with images on S3 (a real moto_server), on the real tiny model: the file is
read back from the bucket, and its storage line is priced as S3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from rendercost.cli import app
from tests.fixtures.s3 import S3Bucket

pytestmark = pytest.mark.slow


def test_render_out_reads_the_image_from_the_bucket(
    tmp_path: Path, tiny_model_dir: Path, s3_bucket: S3Bucket
) -> None:
    env = {
        "RENDERCOST_MODELS__DEFAULT__SOURCE": str(tiny_model_dir),
        "RENDERCOST_MIN_SIDE": "64",
        "RENDERCOST_CONFIG": None,
        "RENDERCOST_DATABASE_URL": None,
        "RENDERCOST_LLM_PROVIDERS": None,
        "RENDERCOST_ARTIFACTS_URL": f"s3://{s3_bucket.name}/cli",
    }
    out = tmp_path / "heron.png"
    args = ["--data-dir", str(tmp_path / "data"), "render", "a heron", "--seed", "5", "--out", str(out)]
    result = CliRunner(env=env).invoke(app, [*args, "--preset", "lightning", "--size", "64x64"])
    assert result.exit_code == 0, result.output
    (key,) = s3_bucket.object_keys()
    assert key.startswith("cli/")
    assert out.read_bytes() == s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    with Image.open(out) as image:
        payload = json.loads(image.text["rendercost"])  # type: ignore[attr-defined]
    (storage,) = [line for line in payload["receipt"]["lines"] if line["stage"] == "storage"]
    assert storage["details"]["backend"] == "s3"
    assert not (tmp_path / "data" / "artifacts").exists()
