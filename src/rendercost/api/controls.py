"""HTTP headers -> admission's typed controls: the rewrite ask, the cache mode, the render class.

``rewrite: true`` (an extension field) or a style that asks for it (``llm_gateway.builtin.REWRITE_STYLES``)
rewrites the prompt; ``X-Cache: bypass`` skips the semantic cache; ``X-Cache-Threshold: 0.97`` sets
its threshold for this request. ``Cache-Control: no-cache`` skips the exact-result cache's read (the
result is still stored), ``no-store`` neither reads nor stores; a seed the client left random counts as
``no-store``. ``X-Render-Class`` names the request's class for the tenant's preset routing.
"""

from __future__ import annotations

from starlette.datastructures import Headers

from rendercost.admission.rewrite import RewriteAsk
from rendercost.admission.routing import CLASS_HEADER
from rendercost.admission.ticket import AnswerAs, Ticket
from rendercost.auth.keys import ApiKey
from rendercost.domain.controls import CacheMode
from rendercost.domain.specs import RenderRequest
from rendercost.errors import InvalidRequest

THRESHOLD_HEADER = "X-Cache-Threshold"


def rewrite_ask(flag: bool | None, headers: Headers) -> RewriteAsk:
    """The rewrite step's controls from the ``rewrite`` field and the ``X-Cache*`` headers."""
    return RewriteAsk(
        wanted=bool(flag),
        use_cache=headers.get("x-cache", "").strip().lower() != "bypass",
        threshold=_threshold(headers),
    )


def _threshold(headers: Headers) -> float | None:
    raw = headers.get(THRESHOLD_HEADER)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise InvalidRequest("X-Cache-Threshold must be a number in (0, 1]", param=THRESHOLD_HEADER)
    return value


def cache_mode(headers: Headers, *, random_seed: bool) -> CacheMode:
    """``Cache-Control`` as the exact-result cache's mode; a random seed is never read nor stored."""
    return CacheMode.NO_STORE if random_seed else CacheMode.from_header(headers.get("cache-control"))


def http_ticket(
    key: ApiKey,
    request: RenderRequest,
    headers: Headers,
    *,
    rewrite: bool | None,
    random_seed: bool,
    answer_as: AnswerAs,
    idempotency_key: str | None = None,
    webhook_url: str | None = None,
) -> Ticket:
    """The ticket of a render route: the key's tenant, id and tags, and the typed controls."""
    return Ticket(
        tenant=key.tenant,
        request=request,
        key_id=key.id,
        tags={**key.tags, "api_key": key.id},
        render_class=headers.get(CLASS_HEADER),
        rewrite=rewrite_ask(rewrite, headers),
        cache=cache_mode(headers, random_seed=random_seed),
        idempotency_key=idempotency_key,
        webhook_url=webhook_url,
        answer_as=answer_as,
    )
