"""Prompt rewriting on the HTTP path, before the result cache and the queue.

A request asks for it with ``rewrite: true`` (an extension field) or a style that asks for it
(``llm_gateway.builtin.REWRITE_STYLES``). The rewritten prompt replaces the spec's prompt (so the exact
result cache keys on the FINAL prompt) and is kept, with who wrote it and its cache outcome, as the
request's ``rewrite`` record: the response's ``revised_prompt`` and ``rendercost.cache.rewrite`` come from
there. ``X-Cache: bypass`` skips the semantic cache; ``X-Cache-Threshold: 0.97`` sets its threshold for
this request. A rewrite that no longer fits the model's text encoder is dropped (the original renders).
"""

from __future__ import annotations

from dataclasses import replace

from fastapi import Request
from starlette.datastructures import Headers

from rendercost.api.deps import ApiServices, admit, blocking, route_request, services
from rendercost.auth.keys import ApiKey
from rendercost.domain.specs import RenderRequest
from rendercost.errors import InvalidRequest, PromptTooLong
from rendercost.ledger.pricing import rewrite_lines
from rendercost.llm_gateway.builtin import REWRITE_STYLES
from rendercost.llm_gateway.gateway import Gateway
from rendercost.llm_gateway.rewriter import PromptRewriter, RewriteOutcome
from rendercost.llm_gateway.types import RewriteRequest


def wants_rewrite(flag: bool | None, styles: tuple[str, ...]) -> bool:
    return bool(flag) or any(style in REWRITE_STYLES for style in styles)


def _threshold(headers: Headers) -> float | None:
    raw = headers.get("x-cache-threshold")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise InvalidRequest("X-Cache-Threshold must be a number in (0, 1]", param="X-Cache-Threshold")
    return value


async def apply_rewrite(
    svc: ApiServices, render_request: RenderRequest, headers: Headers, *, tenant: str
) -> tuple[RenderRequest, RewriteOutcome | None]:
    """The request with its prompt rewritten (and recorded as its ``rewrite``), and the outcome."""
    rewriter = svc.rewriter or PromptRewriter(Gateway([]))  # no chain configured: the builtin rewrite
    threshold = _threshold(headers)
    use_cache = headers.get("x-cache", "").strip().lower() != "bypass"
    spec = render_request.spec
    ask = RewriteRequest(
        prompt=spec.prompt, styles=render_request.styles, seed=spec.seed, target_model=spec.model
    )
    outcome = await blocking(lambda: rewriter.rewrite(tenant, ask, use_cache=use_cache, threshold=threshold))
    result = outcome.result
    record = outcome.record(spec.prompt, rewriter.line(outcome))  # the line: split by rewrite_lines
    try:
        await blocking(lambda: svc.catalog.check_prompt(spec.model, result.prompt, param="prompt"))
    except PromptTooLong:
        record = replace(record, dropped="too long for the model's text encoder")
        return replace(render_request, rewrite=record), outcome
    new_spec = replace(spec, prompt=result.prompt)
    return replace(render_request, spec=new_spec, rewrite=record), outcome


async def admit_and_prepare(
    request: Request, key: ApiKey, render_request: RenderRequest, *, rewrite: bool | None
) -> tuple[RenderRequest, ApiKey, RewriteOutcome | None]:
    """The steps both render endpoints take before the cache and the queue: charge the rate limits,
    rewrite the prompt when asked (flag or style), apply the tenant's preset routing."""
    svc = services(request)
    await admit(request, key, images=render_request.n)
    outcome = None
    if wants_rewrite(rewrite, render_request.styles):
        render_request, outcome = await apply_rewrite(svc, render_request, request.headers, tenant=key.tenant)
    render_request, key = await route_request(request, key, render_request)
    return render_request, key, outcome


async def record_rewrite(
    svc: ApiServices, outcome: RewriteOutcome | None, render_request: RenderRequest, *, job_id: str,
    tenant: str, tags: dict[str, str],
) -> None:  # fmt: skip
    """Write the ``prompt_rewrite`` lines of job ``job_id`` now: the tokens are spent whether or not the
    render succeeds. The worker puts the same lines in the images' receipts (billed once)."""
    if outcome is None or svc.rewriter is None:
        return
    rewriter = svc.rewriter
    attribution = render_request.attribution(tenant, tags)
    lines = rewrite_lines(render_request, job_id)
    await blocking(lambda: rewriter.record(lines, attribution))


def revised_prompt(render_request: RenderRequest) -> str | None:
    """The prompt the rewrite made, when it is what renders (None: not rewritten, or dropped)."""
    record = render_request.rewrite
    return record.revised_prompt if record is not None and record.used else None
