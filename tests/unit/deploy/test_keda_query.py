"""The rendered KEDA queries, run against PostgreSQL with jobs queued and claimed through the real
queue store: each returns the number README "Scaling out" promises, and KEDA's replica arithmetic on
it (ceil(value / targetQueryValue), bounded by the pool's min and max) gives the workers it names.

The scenario (README): 20 batch jobs and 3 interactive jobs submitted; a batch-pool worker holds 4 batch
jobs, an interactive-pool worker holds 2 batch jobs and 1 interactive job, one queued batch job was
cancelled. The batch pool counts 13 queued + its own 4 running = 17 -> ceil(17 / 8) = 3 workers; the
interactive pool counts 2 queued interactive + its own 3 running = 5 -> ceil(5 / 2) = 3 workers.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from rendercost.domain.specs import Priority, RenderRequest, RenderSpec
from rendercost.queue.codec import PRIORITY_RANK
from rendercost.queue.sql_store import SqlJobStore
from tests.unit.deploy.conftest import REPO, Rendered, render

pytestmark = pytest.mark.slow  # helm runs
LEASE_S = 600.0


def _request(i: int, priority: Priority) -> RenderRequest:
    spec = RenderSpec(prompt=f"prompt {i}", model="default", preset="lightning", width=64, height=64, seed=i)
    return RenderRequest(spec=spec, n=1, priority=priority)


def _triggers(rendered: Rendered) -> dict[str, tuple[str, float, int, int]]:
    """pool -> (query, targetQueryValue, minReplicaCount, maxReplicaCount)."""
    found: dict[str, tuple[str, float, int, int]] = {}
    for scaled in rendered.of_kind("ScaledObject"):
        spec: dict[str, Any] = scaled["spec"]
        (trigger,) = spec["triggers"]
        pool = scaled["metadata"]["labels"]["rendercost.io/pool"]
        metadata = trigger["metadata"]
        found[pool] = (
            metadata["query"],
            float(metadata["targetQueryValue"]),
            spec["minReplicaCount"],
            spec["maxReplicaCount"],
        )
    return found


def keda_replicas(value: float, target: float, minimum: int, maximum: int) -> int:
    """What KEDA asks of the HPA for one postgresql trigger (AverageValue, activation at 0)."""
    if value <= 0:
        return minimum
    return max(minimum, min(maximum, math.ceil(value / target)))


def _count(engine: Engine, query: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(query)).scalar_one())


@pytest.fixture(scope="module")
def rendered(k8s_bin: Path) -> Rendered:
    return render(k8s_bin)


@pytest.mark.integration
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # KEDA queries PostgreSQL
def test_the_queries_count_what_each_pool_must_serve(rendered: Rendered, migrated_engine: Engine) -> None:
    triggers = _triggers(rendered)
    assert set(triggers) == {"interactive", "batch"}
    for query, _, _, _ in triggers.values():
        assert _count(migrated_engine, query) == 0  # an empty queue: both pools at zero
    store = SqlJobStore(migrated_engine)
    batch = [store.enqueue("acme", _request(i, Priority.BATCH)) for i in range(20)]
    # Pod names, as --worker-id $(POD_NAME) gives them: the Deployment's name, then two hashes.
    held_by_batch = store.claim("rc-rendercost-worker-batch-5d8f7c9b4-x2x9q", 4, lease_seconds=LEASE_S)
    held_by_interactive = store.claim(
        "rc-rendercost-worker-interactive-7b6d5-k4m2n", 2, lease_seconds=LEASE_S
    )
    assert {job.request.priority for job in held_by_batch + held_by_interactive} == {Priority.BATCH}
    store.cancel(batch[-1].id)
    interactive = [store.enqueue("bob", _request(100 + i, Priority.INTERACTIVE)) for i in range(3)]
    (claimed,) = store.claim("rc-rendercost-worker-interactive-7b6d5-k4m2n", 1, lease_seconds=LEASE_S)
    assert claimed.id == interactive[0].id

    counts = {pool: _count(migrated_engine, query) for pool, (query, _, _, _) in triggers.items()}
    assert counts == {"batch": 13 + 4, "interactive": 2 + 3}
    replicas = {pool: keda_replicas(counts[pool], *triggers[pool][1:]) for pool in triggers}
    assert triggers["batch"][1] == 8 and triggers["interactive"][1] == 2  # jobsPerWorker, values.yaml
    assert replicas == {"batch": 3, "interactive": 3}


def test_the_chart_uses_the_queue_s_priority_ranks(rendered: Rendered) -> None:
    triggers = _triggers(rendered)
    assert f"priority_rank IN ({PRIORITY_RANK[Priority.BATCH]})" in triggers["batch"][0]
    assert f"priority_rank IN ({PRIORITY_RANK[Priority.INTERACTIVE]})" in triggers["interactive"][0]


def test_keda_replica_arithmetic() -> None:
    assert keda_replicas(0, 8, 0, 32) == 0
    assert keda_replicas(1, 8, 0, 32) == 1
    assert keda_replicas(17, 8, 0, 32) == 3
    assert keda_replicas(1000, 8, 0, 32) == 32


def test_the_readme_shows_the_query_the_chart_renders(k8s_bin: Path) -> None:
    """README "Scaling out" prints the batch pool's query for `helm install rendercost ...`."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Scaling out") :]
    block = re.search(r"```sql\n(.*?)```", section, re.DOTALL)
    assert block is not None
    shown = " ".join(re.sub(r"--[^\n]*", "", block.group(1)).split())
    rendered = _triggers(render(k8s_bin, release="rendercost"))["batch"][0]
    assert shown == " ".join(rendered.split())
