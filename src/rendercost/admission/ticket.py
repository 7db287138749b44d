"""What a door hands admission (``Ticket``) and what it gets back (``Admitted``).

A door (an HTTP route, ``rendercost render``, ``rendercost batch``) parses its input into a
``RenderRequest`` and the typed controls below; ``Admission.admit(ticket)`` answers with an
``Admitted`` or raises a refusal from the one error tree (``errors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from rendercost.admission.exact_cache import CacheAnswer
from rendercost.admission.rewrite import RewriteAsk
from rendercost.domain.controls import CacheMode, RewriteRecord
from rendercost.domain.jobs import Job
from rendercost.domain.money import ZERO
from rendercost.domain.specs import RenderRequest

HIT_PREFIX = "cache-"  # ids of receipt-only cache answers (never a queued job's id)


class AnswerAs(StrEnum):
    """How a cache hit is answered: as a stored SUCCEEDED job (jobs API, CLI, batch) or as a
    receipt-only answer named ``cache-<uuid>`` (the images API)."""

    JOB = "job"
    HIT = "hit"


@dataclass(frozen=True)
class Ticket:
    """One render asked for at a door."""

    tenant: str
    request: RenderRequest  # as the door parsed it (seed resolved)
    key_id: str | None = None  # the API key charged to the rate limits; None: no limits (the CLI)
    tags: Mapping[str, str] = field(default_factory=dict)  # the job's tags (the key's, api_key)
    render_class: str | None = None  # X-Render-Class (else the key's ``class`` tag)
    rewrite: RewriteAsk = field(default_factory=RewriteAsk)
    cache: CacheMode = CacheMode.DEFAULT  # Cache-Control; a random seed is the door's NO_STORE
    idempotency_key: str | None = None
    webhook_url: str | None = None
    answer_as: AnswerAs = AnswerAs.JOB


@dataclass(frozen=True)
class CacheHit:
    """A receipt-only answer from the cache (images API): its lines are billed under ``id``."""

    id: str  # "cache-<uuid>"
    answer: CacheAnswer

    @property
    def cost_avoided(self) -> Decimal:
        return sum((image.receipt.total_avoided for image in self.answer.result.images), ZERO)


@dataclass(frozen=True)
class Admitted:
    """What admission did: the request as admitted (routed, rewritten, its cache policy set), and
    either the job (queued, or SUCCEEDED from the cache) or a receipt-only cache hit; plus the
    rate-limit headers to send."""

    request: RenderRequest
    job: Job | None = None
    hit: CacheHit | None = None
    tags: Mapping[str, str] = field(default_factory=dict)  # the job's tags (the class added by routing)
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def rewrite(self) -> RewriteRecord | None:
        return self.request.rewrite
