"""The pages: sign-in, playground, history, costs, admin and plan, rendered on the server (Jinja2).

A page needs a live session cookie (``auth.sessions``); without one it redirects to ``/sign-in``. The
page carries the session's CSRF token in a ``<meta>`` tag for its script to echo on unsafe requests, and
a Content-Security-Policy that allows this origin only. Pages hold no data of their own: their scripts
read the same JSON routes API clients use (``/v1/jobs``, ``/v1/costs``, ...), so what a page shows is
exactly what the API answers for the same key. Admin pages answer 403 to a tenant's session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from rendercost.api.deps import blocking, services
from rendercost.auth.sessions import SESSION_COOKIE, Session
from rendercost.errors import AuthenticationFailed
from rendercost.web.options import playground_options

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "img-src 'self' data: blob:",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
NAV = (("playground", "Playground"), ("history", "History"), ("costs", "Costs"))
ADMIN_NAV = (("admin", "Admin"), ("plan", "Plan"))


@dataclass(frozen=True)
class Viewer:
    """Who is looking at a page."""

    tenant: str
    admin: bool
    key_prefix: str
    csrf_token: str


async def viewer(request: Request) -> Viewer | None:
    """The signed-in viewer of the request's cookie, or None."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        session: Session = await blocking(services(request).sessions.resolve, cookie)
    except AuthenticationFailed:
        return None
    key = session.key
    return Viewer(key.tenant, key.admin, key.prefix, session.csrf_token)


def render(request: Request, page: str, who: Viewer | None, status: int = 200, **context: Any) -> Response:
    nav = NAV + (ADMIN_NAV if who is not None and who.admin else ())
    response = templates.TemplateResponse(
        request, f"{page}.html", {"page": page, "viewer": who, "nav": nav, **context}, status_code=status
    )
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def to_sign_in() -> Response:
    return RedirectResponse("/sign-in", status_code=303)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> Response:
    return RedirectResponse("/playground" if await viewer(request) else "/sign-in", status_code=303)


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request) -> Response:
    if await viewer(request) is not None:
        return RedirectResponse("/playground", status_code=303)
    return render(request, "sign_in", None)


@router.get("/playground", response_class=HTMLResponse)
async def playground_page(request: Request) -> Response:
    who = await viewer(request)
    if who is None:
        return to_sign_in()
    svc = services(request)
    options = await blocking(playground_options, svc.settings, svc.catalog)
    return render(request, "playground", who, options=options)


async def _plain(request: Request, page: str, *, admin: bool = False) -> Response:
    who = await viewer(request)
    if who is None:
        return to_sign_in()
    if admin and not who.admin:
        return render(request, "forbidden", who, status=403)
    return render(request, page, who)


@router.get("/history", response_class=HTMLResponse)
async def history_page(request: Request) -> Response:
    return await _plain(request, "history")


@router.get("/costs", response_class=HTMLResponse)
async def costs_page(request: Request) -> Response:
    return await _plain(request, "costs")


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request) -> Response:
    return await _plain(request, "admin", admin=True)


@router.get("/plan", response_class=HTMLResponse)
async def plan_page(request: Request) -> Response:
    return await _plain(request, "plan", admin=True)
