"""``/docs`` (Swagger UI) and ``/redoc`` served from files shipped inside the package: no CDN, no web
fonts, no online validator, so an offline install shows its API reference.

The files under ``api/static/vendor/`` are pinned npm releases written by ``tools/vendor_assets.py``
(versions, integrity hashes and licences beside them in ``VERSIONS``). ``/static`` serves the whole
``api/static`` folder. The app must be made with ``docs_url=None, redoc_url=None`` so FastAPI's own
CDN-backed pages are not registered.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_PATH = "/static"  # where STATIC_DIR is served
SWAGGER = f"{STATIC_PATH}/vendor/swagger-ui-dist"
REDOC = f"{STATIC_PATH}/vendor/redoc"


def install_docs(app: FastAPI, title: str) -> None:
    """Serve ``/static`` and register ``/docs`` and ``/redoc`` on ``app`` over the vendored files."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{SWAGGER}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{SWAGGER}/swagger-ui.css",
            swagger_favicon_url=f"{root}{SWAGGER}/favicon-32x32.png",
            oauth2_redirect_url=None,
            swagger_ui_parameters={"validatorUrl": None},  # the default badge calls validator.swagger.io
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{title} - ReDoc",
            redoc_js_url=f"{root}{REDOC}/bundles/redoc.standalone.js",
            redoc_favicon_url=f"{root}{SWAGGER}/favicon-32x32.png",
            with_google_fonts=False,
        )
