"""A database that cannot be reached is a retryable 503 in the one error shape, not a 500."""

from __future__ import annotations

import socket

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.pool import NullPool

from rendercost.api.errors import DATABASE_RETRY_AFTER_S, install_error_handlers
from rendercost.db.engine import create_db_engine


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when this returns: nothing listens there


def test_an_unreachable_database_is_503_database_unavailable_with_retry_after() -> None:
    engine = create_db_engine(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", poolclass=NullPool)
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/count")
    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT 1")).scalar_one())

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/count")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == str(DATABASE_RETRY_AFTER_S)
    error = response.json()["error"]
    assert (error["code"], error["type"]) == ("database_unavailable", "server_error")
    assert "127.0.0.1" not in error["message"]  # no connection details leak to clients
