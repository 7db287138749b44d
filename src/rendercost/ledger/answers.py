"""The pricing of an answer from the exact-result cache: what a request answered with stored files pays.

A cache answer renders nothing: each render stage the paid render billed comes back at $0 with its cost
as ``cost_avoided`` (``hit_receipt``), plus the answering request's own prompt-rewrite share, which was
paid (the rewrite runs before the lookup) (``answer_receipts``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from rendercost.domain.costs import CostLine, Receipt, Stage
from rendercost.domain.money import ZERO
from rendercost.domain.specs import RenderRequest
from rendercost.ledger.pricing import rewrite_lines
from rendercost.ledger.savings import STORED_FILE_KEYS


def answer_receipts(
    request: RenderRequest, payloads: Sequence[Mapping[str, Any]], answer_id: str
) -> tuple[Receipt, ...]:
    """One receipt per image of a cache answer named ``answer_id`` (``payloads``: each cached image's
    stored ``{"seed", "receipt"}``): this request's own prompt-rewrite share (paid: the rewrite ran
    before the lookup), then every stage of the render that paid for the file at $0 with its cost
    avoided."""
    rewrites = rewrite_lines(request, answer_id)
    return tuple(
        Receipt((*rewrites[i : i + 1], *hit_receipt(payload, answer_id, i).lines))
        for i, payload in enumerate(payloads)
    )


def hit_receipt(payload: Mapping[str, Any], hit_id: str, image_index: int) -> Receipt:
    """The receipt of one image served from the cache: each render stage the paid render billed, at $0
    with its cost as ``cost_avoided``, and nothing else (a hit stores no new bytes). The paid render's
    prompt rewrite is left out: the cache does not spare it (a rewrite happens before the lookup). The
    storage line keeps the paid file's bytes, days and format: the file whose storing the hit avoided,
    which its lifecycle and format savings are measured on (``ledger.savings``)."""
    paid = [CostLine.from_dict(line) for line in (payload.get("receipt") or {}).get("lines", [])]
    return Receipt(
        tuple(
            replace(
                line,
                job_id=hit_id,
                image_index=image_index,
                device_seconds=0.0,
                quantity=ZERO,
                cost=ZERO,
                batch_id="",
                batch_size=1,
                cost_avoided=line.cost,
                details={"cache": "result", "paid_in_batch": line.batch_id, **_paid_file(line)},
            )
            for line in paid
            if line.stage != Stage.PROMPT_REWRITE
        )
    )


def _paid_file(line: CostLine) -> dict[str, Any]:
    """What a paid storage line says of its file (``STORED_FILE_KEYS``); nothing for another stage."""
    if line.stage != Stage.STORAGE:
        return {}
    return {key: line.details[key] for key in STORED_FILE_KEYS if key in line.details}
