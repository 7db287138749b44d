"""The bucket's own lifecycle rules: S3 expires what the sweeper would, should the sweeper stop.

One rule per request class: objects under the store's prefix tagged ``rendercost-class=<class>``
expire ``retention_days + grace_days`` days after they were written (S3 counts from the object's
creation and runs its rules about once a day, so the grace leaves the sweeper, which deletes at the
exact expiry, to act first). Content addressing means one object can serve several references with
different retentions, so the tag an object carries is the class whose rule outlives every live
reference to it (``class_for``); an object no rule outlives carries ``keep`` (no rule: the sweeper
alone deletes it). ``S3Tagger`` writes those tags for the references made since its last pass.

``lifecycle_configuration`` is the document ``put_bucket_lifecycle_configuration`` takes; ``rendercost
artifacts lifecycle`` prints it and ``--apply`` puts it. It replaces the bucket's whole lifecycle
configuration (S3 has no per-rule update), which is why it is printed first.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from rendercost.artifacts.s3 import S3ArtifactStore, S3Location
from rendercost.artifacts.tables import artifacts

logger = logging.getLogger(__name__)

TAG_KEY = "rendercost-class"
KEEP = "keep"  # the tag of an object no class rule outlives
RULE_PREFIX = "rendercost-"
OVERLAP = timedelta(minutes=5)  # each pass looks this far behind the last one


def rule_days(classes: Mapping[str, int], grace_days: int) -> dict[str, int]:
    """Each class's rule: its retention plus the grace, in days."""
    return {name: days + grace_days for name, days in classes.items()}


def lifecycle_configuration(
    location: S3Location, classes: Mapping[str, int], grace_days: int
) -> dict[str, Any]:
    """The ``LifecycleConfiguration`` for the store at ``location``: one enabled rule per class of
    ``classes`` (name -> retention days), in name order."""
    rules = []
    for name, days in sorted(rule_days(classes, grace_days).items()):
        tag = {"Key": TAG_KEY, "Value": name}
        filter_: dict[str, Any] = (
            {"And": {"Prefix": location.prefix, "Tags": [tag]}} if location.prefix else {"Tag": tag}
        )
        rules.append(
            {
                "ID": f"{RULE_PREFIX}{name}",
                "Status": "Enabled",
                "Filter": filter_,
                "Expiration": {"Days": days},
            }
        )
    return {"Rules": rules}


def apply_configuration(store: S3ArtifactStore, configuration: Mapping[str, Any]) -> None:
    """Put ``configuration`` on the store's bucket (it replaces the bucket's lifecycle rules)."""
    store.client.put_bucket_lifecycle_configuration(
        Bucket=store.location.bucket, LifecycleConfiguration=dict(configuration)
    )


def class_for(written_at: datetime, needed_until: datetime, rules: Mapping[str, int]) -> str:
    """The class whose rule (name -> days after ``written_at``) expires soonest but not before
    ``needed_until``; ``KEEP`` when none lasts that long."""
    lasting = [
        (days, name) for name, days in rules.items() if written_at + timedelta(days=days) >= needed_until
    ]
    return min(lasting)[1] if lasting else KEEP


class S3Tagger:
    """Tags the objects referenced since its last pass with the class whose rule outlives them."""

    def __init__(
        self, engine: Engine, store: S3ArtifactStore, rules: Mapping[str, int], since: datetime
    ) -> None:
        self._engine = engine
        self._store = store
        self._rules = dict(rules)
        self._since = since  # rows created after this are new references

    def tag_new_references(self, now: datetime) -> int:
        """Blocking. Tag every object with a reference created since the last pass (less
        ``OVERLAP``, for rows that committed late); return how many. A key whose tagging fails keeps
        its tag, or has none (no rule: the sweeper still deletes it) until a later reference."""
        new_keys = (
            select(artifacts.c.key)
            .where(artifacts.c.created_at > self._since - OVERLAP, artifacts.c.created_at <= now)
            .distinct()
        )
        query = (
            select(
                artifacts.c.key,
                func.min(artifacts.c.created_at),
                func.max(artifacts.c.expires_at),
                func.count(),
                func.count(artifacts.c.expires_at),
            )
            .where(artifacts.c.key.in_(new_keys), artifacts.c.deleted_at.is_(None))
            .group_by(artifacts.c.key)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        tagged = 0
        for key, written_at, needed_until, references, expiring in rows:
            value = class_for(written_at, needed_until, self._rules) if references == expiring else KEEP
            try:
                self._store.set_tag(key, TAG_KEY, value)
            except Exception:  # S3 is down: try the next key
                logger.exception("tagging an artifact failed", extra={"fields": {"key": key}})
                continue
            tagged += 1
        self._since = now
        return tagged
