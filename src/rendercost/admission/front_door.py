"""The front door: every render a door accepts is admitted here, in seven named steps (and step 0).

``Admission.admit(ticket)`` (blocking: SQL, LLM calls, embeddings; the API runs it in a worker thread,
the CLI calls it directly):

    0. apply styles         the style set's templates for the request's ``styles`` (``admission.styles``)
    1. charge limits        the rate limits of the ticket's key and tenant (``admission.ratelimit``)
    2. rewrite              the prompt, when asked, through the semantic cache (``admission.rewrite``)
    3. route the preset     the tenant's policy for the request's class (``admission.routing``), and
                            the class's retention and format (``admission.lifecycle``)
    4. answer from cache    an exact repeat answered from stored files (``admission.exact_cache``),
                            billed by the ``Biller`` as a SUCCEEDED job or as a receipt-only hit
    5. estimate, reserve    the request's estimated cost against the budgets (``admission.budget``)
    6. enqueue              unless the queue is full; a refused or failed enqueue releases step 5
    7. bill the rewrite     the rewrite's ``prompt_rewrite`` lines (spent whatever the render does)

Refusals raise the one error tree (``LimitRefused``, ``BudgetExceeded``, ``QueueFull``,
``InvalidRequest`` ...) with nothing written. Admission imports nothing of ``execution`` or ``api``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from rendercost.admission.budget import BudgetGuard
from rendercost.admission.catalog import ModelCatalog
from rendercost.admission.exact_cache import ExactCache
from rendercost.admission.lifecycle import StoragePolicy
from rendercost.admission.ratelimit import RateLimiter
from rendercost.admission.rewrite import PromptRewriter, rewrite_step
from rendercost.admission.routing import CLASS_TAG, RoutingStore, resolve_class, route
from rendercost.admission.styles import style_step
from rendercost.admission.ticket import HIT_PREFIX, Admitted, AnswerAs, CacheHit, Ticket
from rendercost.domain.controls import CacheMode, CacheOutcome, CachePolicy
from rendercost.domain.jobs import Job, new_job_id
from rendercost.domain.specs import RenderRequest
from rendercost.errors import QueueFull
from rendercost.ledger.billing import Biller
from rendercost.ledger.pricing import rewrite_lines
from rendercost.ledger.savings import ROUTED_FROM_TAG
from rendercost.llm_gateway.gateway import Gateway
from rendercost.queue.protocol import JobStore


def _ignore(*_args: object) -> None:
    return None


@dataclass(frozen=True)
class AdmissionHooks:
    """What admission reports as it goes (metrics): a limit's refusal by scope, a result-cache lookup."""

    on_rate_limited: Callable[[str], None] = _ignore  # the scope that refused
    on_result_lookup: Callable[[bool], None] = _ignore  # True on a hit


@dataclass(frozen=True)
class QueueLimit:
    """At ``max_depth`` queued jobs new submissions are refused (``QueueFull``, with Retry-After)."""

    max_depth: int
    retry_after_s: float


@dataclass(frozen=True)
class Admission:
    """The front door over one database, built once per process with its collaborators; safe to share
    between threads. An optional collaborator left None turns its step off (the CLI has no limits)."""

    store: JobStore
    biller: Biller
    catalog: ModelCatalog  # checks a rewritten prompt still fits the model
    rewriter: PromptRewriter = field(default_factory=lambda: PromptRewriter(Gateway([])))
    limiter: RateLimiter | None = None
    routing: RoutingStore | None = None
    exact: ExactCache | None = None
    budget: BudgetGuard | None = None
    queue_limit: QueueLimit | None = None
    wake_workers: Callable[[], None] = _ignore  # a job was queued: in-process workers look now
    hooks: AdmissionHooks = field(default_factory=AdmissionHooks)
    storage: StoragePolicy = field(default_factory=StoragePolicy)  # retention and format per class

    def admit(self, ticket: Ticket) -> Admitted:
        """Blocking. Admit ``ticket``'s request (the seven steps above) or raise the refusal."""
        styled = self.apply_styles(ticket.request)
        headers = self.charge_limits(ticket)
        request = self.rewrite(ticket, styled)
        request, tags = self.route_preset(ticket, request)
        answered, request = self.answer_from_cache(ticket, request, tags)
        if answered is not None:
            return replace(answered, rate_limit_headers=headers)
        reservation = self.reserve_budget(ticket.tenant, request)
        job = self.enqueue(ticket, request, tags, reservation)
        self.bill_rewrite(ticket.tenant, request, job, tags)
        return Admitted(request=request, job=job, tags=tags, rate_limit_headers=headers)

    # 0 ------------------------------------------------------------------------------------------------
    def apply_styles(self, request: RenderRequest) -> RenderRequest:
        """The request with its styles' templates applied (before anything is charged: a styled prompt
        too long for the model is refused with nothing spent)."""
        return style_step(self.catalog, request)

    # 1 ------------------------------------------------------------------------------------------------
    def charge_limits(self, ticket: Ticket) -> Mapping[str, str]:
        """The ``RateLimit-*`` headers; ``LimitRefused`` (charging nothing) when a limit has no room."""
        if self.limiter is None or ticket.key_id is None:
            return {}
        decision = self.limiter.check(ticket.key_id, ticket.tenant, images=ticket.request.n)
        if decision.refused is not None:
            self.hooks.on_rate_limited(decision.scope or "unknown")
            raise decision.refused
        return decision.headers

    # 2 ------------------------------------------------------------------------------------------------
    def rewrite(self, ticket: Ticket, request: RenderRequest) -> RenderRequest:
        """The request with its prompt rewritten when the ticket (flag) or a style asks for it."""
        return rewrite_step(self.rewriter, self.catalog, ticket.tenant, request, ticket.rewrite)

    # 3 ------------------------------------------------------------------------------------------------
    def route_preset(self, ticket: Ticket, request: RenderRequest) -> tuple[RenderRequest, dict[str, str]]:
        """The request with the preset and priority the tenant's policy gives its class, its retention
        granted and its class's format (``StoragePolicy.apply``), and the job's tags with that class
        (so its cost lines carry it) and, when the preset changed, the preset asked for
        (``routed_from``); only the retention changes when no class is named."""
        tags = dict(ticket.tags)
        render_class = resolve_class(ticket.render_class, tags)
        request = self.storage.apply(request, render_class)
        if self.routing is None or render_class is None:
            return request, tags
        rules = self.routing.get(ticket.tenant)
        routed = route(request, render_class, rules)
        tags[CLASS_TAG] = render_class
        if routed.spec.preset != request.spec.preset:
            tags[ROUTED_FROM_TAG] = request.spec.preset  # the routing saving is measured against it
        return routed, tags

    # 4 ------------------------------------------------------------------------------------------------
    def answer_from_cache(
        self, ticket: Ticket, request: RenderRequest, tags: dict[str, str]
    ) -> tuple[Admitted | None, RenderRequest]:
        """The answer when every image is cached (its lines billed), or None with the request to
        enqueue: its ``cache`` policy holds the mode and the outcome (``miss``, ``bypass``, ``off``)."""
        exact = self.exact
        if exact is None or not exact.enabled:
            return None, replace(request, cache=replace(request.cache, outcome=CacheOutcome.OFF))
        bypass = CachePolicy(ticket.cache, CacheOutcome.BYPASS)
        if ticket.cache is not CacheMode.DEFAULT or exact.keys(request) is None:
            return None, replace(request, cache=bypass)  # no-cache, no-store, or a random seed
        answered = self._answer(exact, ticket, request, tags)
        self.hooks.on_result_lookup(answered is not None)
        if answered is None:
            return None, replace(request, cache=replace(bypass, outcome=CacheOutcome.MISS))
        return answered, answered.request

    def _answer(
        self, exact: ExactCache, ticket: Ticket, request: RenderRequest, tags: dict[str, str]
    ) -> Admitted | None:
        hit_request = replace(request, cache=CachePolicy(ticket.cache, CacheOutcome.HIT))
        if ticket.answer_as is AnswerAs.HIT:
            hit_id = f"{HIT_PREFIX}{uuid.uuid4().hex}"
            answer = exact.answer(request, hit_id)
            if answer is None:
                return None
            lines = [line for image in answer.result.images for line in image.receipt.lines]
            self.biller.record(lines, request.attribution(ticket.tenant, tags), request=hit_request)
            return Admitted(request=hit_request, hit=CacheHit(hit_id, answer), tags=tags)
        job_id = new_job_id()
        answer = exact.answer(request, job_id)
        if answer is None:
            return None
        job = self.biller.answer(
            job_id,
            ticket.tenant,
            hit_request,
            answer.result,
            answer.artifacts,
            idempotency_key=ticket.idempotency_key,
            webhook_url=ticket.webhook_url,
            tags=tags,
        )
        return Admitted(request=hit_request, job=job, tags=tags)

    # 5 ------------------------------------------------------------------------------------------------
    def reserve_budget(self, tenant: str, request: RenderRequest) -> str | None:
        """The budget reservation for the request's estimate (None: no budgets here);
        ``BudgetExceeded`` when a budget would be passed."""
        return self.budget.reserve(tenant, request) if self.budget is not None else None

    # 6 ------------------------------------------------------------------------------------------------
    def enqueue(
        self, ticket: Ticket, request: RenderRequest, tags: dict[str, str], reservation: str | None
    ) -> Job:
        """The queued job (an Idempotency-Key the tenant used returns its job); ``QueueFull`` when the
        queue is at its limit. A refused or failed enqueue releases the reservation."""
        try:
            self._check_room()
            job = self.store.enqueue(
                ticket.tenant,
                request,
                idempotency_key=ticket.idempotency_key,
                webhook_url=ticket.webhook_url,
                tags=tags,
            )
        except BaseException:
            if self.budget is not None and reservation is not None:
                self.budget.release(reservation)
            raise
        if self.budget is not None and reservation is not None:
            self.budget.attach(reservation, ticket.tenant, job.id)
        self.wake_workers()
        return job

    def _check_room(self) -> None:
        limit = self.queue_limit
        if limit is None:
            return
        queued = sum(self.store.depth().values())
        if queued >= limit.max_depth:
            raise QueueFull(
                f"the queue holds {queued} jobs (limit {limit.max_depth}); retry later",
                retry_after=limit.retry_after_s,
            )

    # 7 ------------------------------------------------------------------------------------------------
    def bill_rewrite(self, tenant: str, request: RenderRequest, job: Job, tags: dict[str, str]) -> None:
        """Write the job's ``prompt_rewrite`` lines now: the tokens are spent whether or not the render
        succeeds. The worker puts the same lines in the images' receipts (billed once)."""
        if request.rewrite is None:
            return
        lines = rewrite_lines(job.request, job.id)  # a replay keeps the first job's rewrite
        if lines:
            self.biller.record(lines, job.request.attribution(tenant, tags))
