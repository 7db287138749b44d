"""The whole server's ASGI app: the HTTP API (``api.app.create_app``) plus the web pages.

``create_web_app`` is what ``rendercost serve`` runs: the API routes unchanged, the pages at ``/``
(``web.pages``), the spend series the Costs page charts (``web.series``) and the page assets under
``/assets`` (shipped in the package: nothing is fetched from another host; ``/static`` is the API's,
holding the vendored Swagger UI and ReDoc of ``/docs`` and ``/redoc``). Pages carry a strict
Content-Security-Policy (``'self'`` only), so even a page bug cannot load or send anything elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from rendercost.api.app import create_app
from rendercost.api.deps import ApiServices
from rendercost.web import pages, series

STATIC_DIR = Path(__file__).parent / "static"
ASSETS_PATH = "/assets"  # where STATIC_DIR is served


def create_web_app(services: ApiServices, *, run_webhooks: bool = True) -> FastAPI:
    """The API app over ``services`` with the web pages and their assets added."""
    app = create_app(services, run_webhooks=run_webhooks)
    app.include_router(pages.router)
    app.include_router(series.router)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC_DIR), name="web-assets")
    return app
