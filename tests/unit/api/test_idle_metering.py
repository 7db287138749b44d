"""The served device writes its idle time to the ledger, so busy + idle covers the machine's time."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from rendercost.cli.serve import embedded_server
from rendercost.db.engine import create_db_engine
from rendercost.domain.costs import Stage
from rendercost.execution.models.catalog import SettingsModelCatalog
from rendercost.ledger.tables import cost_lines
from rendercost.testing.runner import FakeRunner
from tests.unit.api.conftest import api_settings


def test_serving_records_idle_device_time_as_idle_lines(tmp_path: Path) -> None:
    settings = api_settings(tmp_path)
    painter = FakeRunner()
    catalog = SettingsModelCatalog(settings)
    with embedded_server(settings, workers=2, runner=painter, catalog=catalog) as server:
        key = server.services.keys.create("acme").secret
        with TestClient(server.app) as client:
            body = {"prompt": "a lamp", "seed": 3, "response_format": "b64_json"}
            response = client.post(
                "/v1/images/generations", json=body, headers={"Authorization": f"Bearer {key}"}
            )
            assert response.status_code == 200, response.text

    engine = create_db_engine(settings.resolved_database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(cost_lines).where(cost_lines.c.stage == str(Stage.IDLE))).all()
    finally:
        engine.dispose()
    assert painter.calls == [1]
    assert rows, "no idle line was written"
    assert all(row.job_id.startswith("idle:") and row.image_index == -1 for row in rows)
    assert sum(row.device_seconds for row in rows) > 0
    assert len({row.job_id.split(":")[1] for row in rows}) == 1  # one device, however many threads
