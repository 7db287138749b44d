"""The soak's audit, read from the database once the queue has drained.

- jobs by state; a job is LOST when a client was told of it (a 202, or a sync answer) and it is not in
  the database, or when any job is still queued or running after the drain, or when a client was told
  it succeeded and the database says otherwise;
- BILLED TWICE: a job with two ledger lines for one (image, stage); RECEIPT MISMATCH: a succeeded job
  whose ledger lines are not the lines of its stored receipts, or do not sum to them; BILLED
  UNFINISHED: ledger lines for a job that did not succeed;
- the ledger total (every line but the machine's idle time) against the receipts total (the stored
  receipts of succeeded jobs, plus the lines of cache answers, which have no job row), and against what
  the clients were quoted for the same jobs.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Engine, func, select

from rendercost.domain.jobs import TERMINAL_STATES, JobState
from rendercost.ledger.idle import IDLE_TENANT
from rendercost.ledger.tables import cost_lines
from rendercost.queue.sql_store import SqlJobStore
from rendercost.queue.tables import jobs
from soak_clients import Tally

ZERO = Decimal(0)
_OPEN = [str(JobState.QUEUED), str(JobState.RUNNING)]


def drain(engine: Engine, timeout_s: float) -> float:
    """Wait until no job is queued or running; the seconds it took (``timeout_s`` when it did not)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        with engine.connect() as conn:
            if not conn.execute(select(func.count()).where(jobs.c.state.in_(_OPEN))).scalar_one():
                return time.monotonic() - started
        time.sleep(0.5)
    return timeout_s


@dataclass
class Audit:
    states: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    billed_twice: list[str] = field(default_factory=list)
    receipt_mismatch: list[str] = field(default_factory=list)
    billed_unfinished: list[str] = field(default_factory=list)
    ledger_total: Decimal = ZERO
    receipts_total: Decimal = ZERO
    quoted_total: Decimal = ZERO  # what clients were told, for the jobs they were told of
    ledger_of_quoted: Decimal = ZERO  # the ledger's lines of those same jobs
    answer_lines_total: Decimal = ZERO  # cache answers: $0 lines with no job row


def audit(engine: Engine, tally: Tally) -> Audit:
    result = Audit()
    with engine.connect() as conn:
        state_of = dict(conn.execute(select(jobs.c.id, jobs.c.state)).tuples().all())
        rows = conn.execute(
            select(
                cost_lines.c.job_id, cost_lines.c.image_index, cost_lines.c.stage, cost_lines.c.cost
            ).where(cost_lines.c.tenant != IDLE_TENANT)
        ).tuples()
        lines: dict[str, Counter[tuple[int, str]]] = defaultdict(Counter)
        billed: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for job_id, image_index, stage, cost in rows:
            lines[job_id][(image_index, stage)] += 1
            billed[job_id] += cost
    result.states = Counter(state_of.values())
    result.ledger_total = sum(billed.values(), ZERO)
    result.lost = _lost(state_of, tally)
    store = SqlJobStore(engine)
    for job_id, state in state_of.items():
        if state != JobState.SUCCEEDED:
            if job_id in lines:
                result.billed_unfinished.append(job_id)
            continue
        job = store.get(job_id)
        receipt_lines = Counter(
            (line.image_index, str(line.stage))
            for image in (job.result.images if job.result else ())
            for line in image.receipt.lines
        )
        receipt_total = sum(
            (image.receipt.total for image in (job.result.images if job.result else ())), ZERO
        )
        result.receipts_total += receipt_total
        if any(count > 1 for count in lines[job_id].values()):
            result.billed_twice.append(job_id)
        if set(lines[job_id]) != set(receipt_lines) or billed.get(job_id, ZERO) != receipt_total:
            result.receipt_mismatch.append(job_id)
    answers = [job_id for job_id in billed if job_id not in state_of]
    result.answer_lines_total = sum((billed[job_id] for job_id in answers), ZERO)
    result.receipts_total += result.answer_lines_total
    with tally.lock:
        quoted = dict(tally.quoted)
    result.quoted_total = sum(quoted.values(), ZERO)
    result.ledger_of_quoted = sum((billed.get(job_id, ZERO) for job_id in quoted), ZERO)
    return result


def _lost(state_of: dict[str, str], tally: Tally) -> list[str]:
    with tally.lock:
        seen = dict(tally.seen_state)
    lost = [job_id for job_id, state in state_of.items() if JobState(state) not in TERMINAL_STATES]
    for job_id, state in seen.items():
        stored = state_of.get(job_id)
        if stored is None or (state == "succeeded" and stored != JobState.SUCCEEDED):
            lost.append(job_id)
    return sorted(set(lost))
