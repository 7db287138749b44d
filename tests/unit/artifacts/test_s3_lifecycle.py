"""The bucket's lifecycle rules on a real moto S3 server: the configuration per request class, put with
``rendercost artifacts lifecycle --apply``; objects tagged with the class whose rule outlives every live
reference to them (raised when a longer-lived reference arrives)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from typer.testing import CliRunner

from rendercost.artifacts.s3 import S3ArtifactStore, S3Location
from rendercost.artifacts.s3_lifecycle import (
    KEEP,
    TAG_KEY,
    S3Tagger,
    apply_configuration,
    class_for,
    lifecycle_configuration,
    rule_days,
)
from rendercost.cli import app
from tests.fixtures.s3 import S3Bucket
from tests.unit.artifacts.test_sweeper import reference

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CLASSES = {"draft": 1, "review": 7, "final": 30}


def test_the_tag_is_the_shortest_rule_that_outlives_the_references() -> None:
    rules = rule_days(CLASSES, 1)
    assert rules == {"draft": 2, "review": 8, "final": 31}
    assert class_for(T0, T0 + timedelta(days=1), rules) == "draft"
    assert class_for(T0, T0 + timedelta(days=2), rules) == "draft"  # exactly at the rule: still lasts
    assert class_for(T0, T0 + timedelta(days=2, seconds=1), rules) == "review"
    assert class_for(T0, T0 + timedelta(days=30), rules) == "final"
    assert class_for(T0, T0 + timedelta(days=90), rules) == KEEP


def test_the_configuration_has_one_rule_per_class_and_is_applied(s3_bucket: S3Bucket) -> None:
    location = S3Location.parse(f"s3://{s3_bucket.name}/images")
    configuration = lifecycle_configuration(location, CLASSES, 1)
    by_id = {rule["ID"]: rule for rule in configuration["Rules"]}
    assert sorted(by_id) == ["rendercost-draft", "rendercost-final", "rendercost-review"]
    assert by_id["rendercost-draft"]["Expiration"] == {"Days": 2}
    assert by_id["rendercost-draft"]["Filter"] == {
        "And": {"Prefix": "images/", "Tags": [{"Key": TAG_KEY, "Value": "draft"}]}
    }
    apply_configuration(S3ArtifactStore(location), configuration)
    stored = s3_bucket.client.get_bucket_lifecycle_configuration(Bucket=s3_bucket.name)["Rules"]
    assert {rule["ID"]: rule["Expiration"]["Days"] for rule in stored} == {
        "rendercost-draft": 2,
        "rendercost-review": 8,
        "rendercost-final": 31,
    }
    bare = lifecycle_configuration(S3Location.parse(f"s3://{s3_bucket.name}"), {"draft": 1}, 0)
    assert bare["Rules"][0]["Filter"] == {"Tag": {"Key": TAG_KEY, "Value": "draft"}}


def test_new_references_are_tagged_and_a_longer_one_raises_the_tag(
    migrated_engine: Engine, s3_bucket: S3Bucket
) -> None:
    store = S3ArtifactStore(S3Location.parse(f"s3://{s3_bucket.name}/images"))
    draft = store.put(b"a draft", media_type="image/webp", suffix="webp")
    asked = store.put(b"asked for 90 days", media_type="image/png", suffix="png")
    reference(migrated_engine, draft, days=1, created=T0)
    reference(migrated_engine, asked, days=90, created=T0)
    tagger = S3Tagger(migrated_engine, store, rule_days(CLASSES, 1), since=T0 - timedelta(hours=1))

    assert tagger.tag_new_references(T0 + timedelta(minutes=10)) == 2
    assert store.tags(draft.key) == {TAG_KEY: "draft"}
    assert store.tags(asked.key) == {TAG_KEY: KEEP}
    # a final answered with the draft's bytes an hour later must outlive its 30 days
    reference(migrated_engine, draft, days=30, created=T0 + timedelta(hours=1))
    assert tagger.tag_new_references(T0 + timedelta(hours=2)) == 1
    assert store.tags(draft.key) == {TAG_KEY: "final"}
    assert tagger.tag_new_references(T0 + timedelta(hours=3)) == 0  # nothing new


def test_cli_prints_and_applies_the_configuration(s3_bucket: S3Bucket, tmp_path: Path) -> None:
    env = {"RENDERCOST_ARTIFACTS_URL": f"s3://{s3_bucket.name}/renders", "RENDERCOST_CONFIG": None}
    runner = CliRunner(env=env)
    args = ["--data-dir", str(tmp_path), "artifacts", "lifecycle"]
    printed = runner.invoke(app, args)
    assert printed.exit_code == 0, printed.output
    rules = json.loads(printed.stdout)["Rules"]
    assert {rule["ID"]: rule["Expiration"]["Days"] for rule in rules}["rendercost-draft"] == 2
    listed = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name)  # printing changed nothing
    assert "Contents" not in listed
    applied = runner.invoke(app, [*args, "--apply"])
    assert applied.exit_code == 0, applied.output
    stored = s3_bucket.client.get_bucket_lifecycle_configuration(Bucket=s3_bucket.name)["Rules"]
    assert sorted(rule["ID"] for rule in stored) == sorted(rule["ID"] for rule in rules)


def test_cli_lifecycle_without_s3_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = CliRunner(env={"RENDERCOST_ARTIFACTS_URL": None, "RENDERCOST_CONFIG": None}).invoke(
        app, ["--data-dir", str(tmp_path), "artifacts", "lifecycle"]
    )
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: artifacts lifecycle needs an S3 store")
