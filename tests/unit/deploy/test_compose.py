"""deploy/docker-compose.yml: the services a fleet needs, settings that exist, a worker that drains
before it is killed, and a migrate step whose command really upgrades a database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rendercost.db.engine import create_db_engine
from rendercost.db.migrate import current_revision, head_revision
from tests.unit.deploy.conftest import DEPLOY, assert_real_settings, run_in_image_env

COMPOSE = DEPLOY / "docker-compose.yml"


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, dict[str, Any]] = document["services"]
    return found


def _env(service: dict[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping"
    return {str(k): str(v) for k, v in environment.items()}


def test_the_fleet_services_are_all_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {"postgres", "redis", "minio", "create-bucket", "migrate", "api", "worker"}
    for name in ("postgres", "redis", "minio"):
        assert "healthcheck" in services[name], name
    assert services["create-bucket"]["entrypoint"][:3] == ["mc", "mb", "--ignore-existing"]
    for name, service in services.items():
        image = service["image"]
        assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], f"{name}: pin the image tag"


def test_every_rendercost_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    names = {
        name for service in services.values() for name in _env(service) if name.startswith("RENDERCOST_")
    }
    assert {"RENDERCOST_DATABASE_URL", "RENDERCOST_REDIS_URL", "RENDERCOST_ARTIFACTS_URL"} <= names
    assert_real_settings(names, origin=str(COMPOSE))


def test_api_and_worker_share_postgres_redis_and_the_bucket(services: dict[str, dict[str, Any]]) -> None:
    api, worker = _env(services["api"]), _env(services["worker"])
    for name in (
        "RENDERCOST_DATABASE_URL",
        "RENDERCOST_REDIS_URL",
        "RENDERCOST_ARTIFACTS_URL",
        "AWS_ENDPOINT_URL_S3",
    ):
        assert api[name] == worker[name], name
    assert (
        api["RENDERCOST_DATABASE_URL"].startswith("postgresql://")
        and "@postgres:5432/" in api["RENDERCOST_DATABASE_URL"]
    )
    assert api["RENDERCOST_ARTIFACTS_URL"].startswith("s3://rendercost/")  # the bucket create-bucket makes
    assert services["create-bucket"]["entrypoint"][-1] == "store/rendercost"
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["create-bucket"]["condition"] == "service_completed_successfully"
    assert services["api"]["command"][:2] == ["serve", "--no-worker"]


def test_the_worker_drains_before_it_is_killed(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    command = worker["command"]
    assert command[0] == "worker"
    assert command[command.index("--priorities") + 1] == "interactive,batch"
    bind = command[command.index("--metrics-bind") + 1]
    assert _env(worker)["HEALTHCHECK_URL"] == f"http://127.0.0.1:{bind.rsplit(':', 1)[1]}/healthz"
    grace = re.fullmatch(r"(\d+)s", worker["stop_grace_period"])
    assert grace is not None
    assert int(grace.group(1)) > int(_env(worker)["RENDERCOST_WORKER_DRAIN_SECONDS"])
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]


@pytest.mark.slow
def test_the_migrate_command_upgrades_a_database(
    services: dict[str, dict[str, Any]], db_url: str, tmp_path: Path
) -> None:
    done = run_in_image_env(services["migrate"]["command"], db_url, tmp_path)
    assert done.returncode == 0, done.stderr
    engine = create_db_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
