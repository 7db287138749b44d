"""Web sign-in: an API key exchanged for a session cookie, and sign-out.

- ``POST /v1/session`` ``{"api_key": "rc_..."}``: verifies the key and sets the ``rendercost_session``
  cookie (HttpOnly, SameSite=Strict, Path=/, Secure when the request came over TLS or through a proxy
  saying ``X-Forwarded-Proto: https``). Answers who signed in and the CSRF token the page echoes. The body
  must be JSON, which a cross-site HTML form cannot send, so another site cannot sign a browser in.
- ``GET /v1/session``: the current session (cookie) or key, and the CSRF token when a cookie is used.
- ``DELETE /v1/session``: ends the session server-side (the cookie is refused from then on, wherever a
  copy of it is) and clears the cookie. Needs the CSRF token like every unsafe cookie request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from rendercost.api.deps import Authenticated, blocking, services
from rendercost.auth.keys import ApiKey
from rendercost.auth.sessions import SESSION_COOKIE, SESSION_TTL, Session, SessionStore
from rendercost.errors import AuthenticationFailed

router = APIRouter(tags=["session"])


class SignIn(BaseModel):
    api_key: str = Field(min_length=1, max_length=200, description="An API key, `rc_...`.")


class SessionOut(BaseModel):
    tenant: str  # whose jobs, images and costs this session sees
    admin: bool  # an admin key: every tenant's costs, keys, budgets, routing
    key_id: str  # the key signed in with
    key_prefix: str
    csrf_token: str | None = None  # echo in X-CSRF-Token on unsafe requests (cookie sessions only)
    expires_at: str | None = None  # ISO 8601 UTC (cookie sessions only)


def _store(request: Request) -> SessionStore:
    return services(request).sessions


def over_tls(request: Request) -> bool:
    """True when the browser reached us over https (directly, or through a proxy that says so)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _out(key: ApiKey, session: Session | None) -> SessionOut:
    return SessionOut(
        tenant=key.tenant,
        admin=key.admin,
        key_id=key.id,
        key_prefix=key.prefix,
        csrf_token=session.csrf_token if session else None,
        expires_at=session.expires_at.isoformat() if session else None,
    )


async def current_session(request: Request) -> Session:
    """The session of the request's cookie; 401 when there is none or it ended."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthenticationFailed("not signed in")
    return await blocking(_store(request).resolve, cookie)


@router.post("/v1/session", response_model=SessionOut)
async def sign_in(request: Request, response: Response, body: SignIn) -> SessionOut:
    """Exchange an API key for a session cookie."""
    key = await blocking(services(request).keys.verify, body.api_key.strip())
    opened = await blocking(_store(request).open, key)
    response.set_cookie(
        SESSION_COOKIE,
        opened.secret,
        max_age=int(SESSION_TTL.total_seconds()),
        path="/",
        httponly=True,
        samesite="strict",
        secure=over_tls(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return _out(key, opened.session)


@router.get("/v1/session", response_model=SessionOut)
async def show_session(request: Request, response: Response, key: Authenticated) -> SessionOut:
    """Who is calling; with a cookie, the session's CSRF token and expiry too."""
    response.headers["Cache-Control"] = "no-store"
    session = await current_session(request) if request.cookies.get(SESSION_COOKIE) else None
    return _out(key, session if session and session.key.id == key.id else None)


@router.delete("/v1/session", status_code=204, response_class=Response)
async def sign_out(request: Request, _key: Authenticated) -> Response:
    """End the session server-side and clear the cookie (``authenticate`` checked the CSRF token)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise AuthenticationFailed("not signed in: there is no session to end")
    await blocking(_store(request).end, cookie)
    response = Response(status_code=204)
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=over_tls(request)
    )
    return response
