"""`rendercost batch --out` with images on S3 (a real moto_server): the files are read back through the
store, and their storage lines are priced as S3."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from rendercost.cli.batch import run_batch
from rendercost.cli.batch_lines import read_lines
from rendercost.settings import Settings
from rendercost.testing.runner import FakeRunner
from tests.fixtures.s3 import S3Bucket


def test_batch_out_copies_the_images_from_the_bucket(tmp_path: Path, s3_bucket: S3Bucket) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        min_side=64,
        default_size="64x64",
        max_wait_ms=0,
        artifacts_url=f"s3://{s3_bucket.name}/batch",
    )
    text = [
        json.dumps({"prompt": "a heron", "seed": 1, "n": 2}),
        json.dumps({"prompt": "a crane", "seed": 2}),
    ]
    lines, bad = read_lines(text, settings)
    out = tmp_path / "out"
    outcome = run_batch(
        settings,
        lines,
        bad,
        out=out,
        workers=1,
        console=Console(file=io.StringIO()),
        runner_factory=lambda _settings: FakeRunner(),
    )
    assert outcome.failures == []
    files = sorted(path.name for path in out.iterdir())
    assert files == ["00001-0.png", "00001-1.png", "00002-0.png"]
    stored = {
        s3_bucket.client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
        for key in s3_bucket.object_keys()
    }
    assert len(stored) == 3 and all(key.startswith("batch/") for key in s3_bucket.object_keys())
    assert {(out / name).read_bytes() for name in files} == stored
    assert not (tmp_path / "data" / "artifacts").exists()  # nothing went to the local folder
