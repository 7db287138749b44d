"""Saving lines: batching against the measured solo cost of the same spec, routing against the asked-for
preset's, lifecycle by the days not kept, format by the bytes a standard file of the size takes; written
once, references learned from solo renders and stored files only."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, func, select

from rendercost.domain.costs import Attribution, CostLine, Stage
from rendercost.domain.money import ZERO, cost_of_seconds, quantize
from rendercost.domain.specs import RenderRequest, RenderSpec
from rendercost.ledger.pricing import BYTES_PER_GB
from rendercost.ledger.references import SizeKey, SoloStage, SpecKey, solo_samples
from rendercost.ledger.savings import Mechanism, References, SavingsBook, saving_lines_for
from rendercost.ledger.tables import saving_lines

PRICE = Decimal("2.5")  # USD per device-hour
NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _device(
    job: str, stage: Stage, seconds: float, *, index: int = 0, batch: int = 1, **details: str
) -> CostLine:
    return CostLine(
        job_id=job,
        image_index=index,
        stage=stage,
        device_seconds=seconds,
        unit_price=PRICE,
        unit="device-hour",
        quantity=Decimal(0),
        cost=cost_of_seconds(seconds, PRICE),
        batch_size=batch,
        details=dict(details),
    )


def _storage(job: str, size: int, days: int, written: str | None = None) -> CostLine:
    return CostLine(
        job_id=job,
        image_index=0,
        stage=Stage.STORAGE,
        device_seconds=0.0,
        unit_price=Decimal("0.023"),
        unit="GB-month",
        quantity=Decimal(0),
        cost=Decimal("0.000005"),
        device_type="",
        details={"bytes": size, "retention_days": days, **({"format": written} if written else {})},
    )


def test_a_batched_line_saves_the_solo_mean_minus_its_share() -> None:
    refs = References({Stage.DENOISE: SoloStage(seconds=4.0, samples=3)})
    lines = [_device("j", Stage.DENOISE, 1.5, batch=4), _device("j", Stage.DECODE, 0.2, batch=4)]
    (saved,) = saving_lines_for(lines, refs)  # no solo figure for decode: nothing claimed there
    assert saved.mechanism is Mechanism.BATCHING and saved.stage is Stage.DENOISE
    assert saved.amount == cost_of_seconds(4.0, PRICE) - cost_of_seconds(1.5, PRICE)
    assert saved.reference == cost_of_seconds(4.0, PRICE)
    assert saved.details["samples"] == 3


def test_a_batch_share_above_the_solo_mean_is_a_negative_saving() -> None:
    refs = References({Stage.DECODE: SoloStage(seconds=0.1, samples=1)})
    (saved,) = saving_lines_for([_device("j", Stage.DECODE, 0.3, batch=2)], refs)
    assert saved.amount < 0


def test_routing_and_batching_add_up_to_the_asked_for_solo_cost() -> None:
    ran = {Stage.DENOISE: SoloStage(2.0, 5)}
    asked = {Stage.DENOISE: SoloStage(30.0, 2)}
    line = _device("j", Stage.DENOISE, 0.8, batch=4)
    found = {s.mechanism: s for s in saving_lines_for([line], References(ran, asked, "speed"))}
    assert found[Mechanism.ROUTING].amount == cost_of_seconds(30.0, PRICE) - cost_of_seconds(2.0, PRICE)
    assert found[Mechanism.ROUTING].details["from_preset"] == "speed"
    total = line.cost + found[Mechanism.ROUTING].amount + found[Mechanism.BATCHING].amount
    assert total == cost_of_seconds(30.0, PRICE)


def test_a_solo_routed_line_saves_the_asked_for_cost_minus_its_own() -> None:
    line = _device("j", Stage.DENOISE, 0.7)
    refs = References({Stage.DENOISE: SoloStage(0.5, 9)}, {Stage.DENOISE: SoloStage(9.0, 1)}, "speed")
    (saved,) = saving_lines_for([line], refs)  # alone: its own cost is its solo cost, no batching line
    assert saved.mechanism is Mechanism.ROUTING
    assert saved.amount == cost_of_seconds(9.0, PRICE) - line.cost


def test_a_cache_answer_counts_what_it_avoided_as_its_own() -> None:
    line = _device("hit", Stage.DENOISE, 0.0, cache="result")
    paid = cost_of_seconds(1.0, PRICE)
    hit = CostLine(**{**line.__dict__, "cost": ZERO, "cost_avoided": paid})
    refs = References({Stage.DENOISE: SoloStage(1.6, 2)})
    (saved,) = saving_lines_for([hit], refs)  # the paid render's batch share below the solo mean
    assert saved.mechanism is Mechanism.BATCHING
    assert saved.amount == cost_of_seconds(1.6, PRICE) - paid


def test_lifecycle_saves_the_bytes_times_the_days_not_kept() -> None:
    size = 3 * 2**20
    (saved,) = saving_lines_for([_storage("j", size, 1)], References({}), standard_retention_days=30)
    expected = Decimal(size) / BYTES_PER_GB * Decimal(29) / Decimal(30) * Decimal("0.023")
    assert saved.mechanism is Mechanism.LIFECYCLE
    assert abs(saved.amount - expected) < Decimal("1e-10")
    assert saving_lines_for([_storage("j", size, 30)], References({})) == []  # kept the standard days


def test_format_saves_the_standard_files_extra_bytes_over_the_standard_retention() -> None:
    png_mean, size = Decimal("5242880.5"), 2 * 2**20
    refs = References({}, standard_bytes=png_mean)
    line = _storage("j", size, 1, "webp")
    found = {saved.mechanism: saved for saved in saving_lines_for([line], refs, standard_retention_days=30)}
    price = Decimal("0.023")
    assert found[Mechanism.FORMAT].amount == quantize((png_mean - size) / BYTES_PER_GB * price)
    assert found[Mechanism.FORMAT].details["standard_bytes"] == "5242880.5"
    total = line.cost + found[Mechanism.LIFECYCLE].amount + found[Mechanism.FORMAT].amount
    assert found[Mechanism.FORMAT].reference == total
    kept = Decimal(size) / BYTES_PER_GB / 30 * price  # what one day of the line's own bytes costs
    assert abs(total - line.cost - (png_mean / BYTES_PER_GB * price - kept)) < Decimal("3e-10")

    bigger = saving_lines_for([_storage("j", 6 * 2**20, 30, "jpeg")], refs, standard_retention_days=30)
    assert [saved.mechanism for saved in bigger] == [Mechanism.FORMAT] and bigger[0].amount < 0  # signed
    assert saving_lines_for([_storage("j", size, 30, "png")], refs) == []  # the standard format
    assert saving_lines_for([_storage("j", size, 30, "webp")], References({})) == []  # no standard file yet


def test_the_book_learns_stored_sizes_per_format_but_not_from_cache_answers(migrated_engine: Engine) -> None:
    book = SavingsBook()
    speed = Attribution("acme", "default", "speed", "interactive", {})
    device = [_device("p", Stage.DENOISE, 2.0)]
    with migrated_engine.begin() as conn:
        for job, size in (("p1", 1000), ("p2", 2001)):
            lines = [*device, _storage(job, size, 30, "png")]
            book.record(conn, lines, _request("speed"), speed, now=NOW, learn=True)
        hit = _storage("h", 9000, 30, "png")
        hit = CostLine(**{**hit.__dict__, "details": {**hit.details, "cache": "result"}})
        book.record(conn, [*device, hit], _request("speed"), speed, now=NOW, learn=True)
        webp = [*device, _storage("w", 400, 1, "webp")]
        book.record(conn, webp, _request("speed"), speed, now=NOW, learn=True)
        assert book.stored_size(conn, SizeKey("default", 64, 64, "png")) == Decimal("1500.5")
        assert book.stored_size(conn, SizeKey("default", 64, 64, "webp")) == Decimal(400)
        assert book.stored_size(conn, SizeKey("default", 32, 32, "png")) is None
        c = saving_lines.c
        query = select(c.amount).where(c.job_id == "w", c.mechanism == "format")
        (amount,) = conn.execute(query).scalars().all()  # measured against the two PNGs before it
    assert amount == quantize((Decimal("1500.5") - 400) / BYTES_PER_GB * Decimal("0.023"))


def test_solo_samples_skip_batched_images_cache_answers_and_skipped_stages() -> None:
    lines = [
        _device("j", Stage.TEXT_ENCODE, 0.0, skipped="embedding_cache"),
        _device("j", Stage.DENOISE, 2.0),
        _device("j", Stage.DENOISE, 1.0, index=1, batch=2),
        _device("j", Stage.DENOISE, 0.0, index=2, cache="result"),
    ]
    assert solo_samples(lines) == {0: {Stage.DENOISE: 2.0}}


def _request(preset: str) -> RenderRequest:
    return RenderRequest(spec=RenderSpec(prompt="a mug", preset=preset, width=64, height=64, seed=1))


def test_the_book_learns_solo_renders_and_measures_later_ones_against_them(migrated_engine: Engine) -> None:
    book = SavingsBook()
    speed = Attribution("acme", "default", "speed", "interactive", {})
    routed = Attribution("acme", "default", "lightning", "interactive", {"routed_from": "speed"})
    with migrated_engine.begin() as conn:
        for job, seconds in (("s1", 6.0), ("s2", 8.0)):
            book.record(
                conn, [_device(job, Stage.DENOISE, seconds)], _request("speed"), speed, now=NOW, learn=True
            )
        batched = [_device("b", Stage.DENOISE, 9.0, index=i, batch=2) for i in (0, 1)]
        book.record(conn, batched, _request("speed"), speed, now=NOW, learn=True)  # batched: not learned
        assert book.solo(conn, SpecKey("default", "speed", 64, 64, "cpu")) == {
            Stage.DENOISE: SoloStage(7.0, 2)
        }
        draft = [_device("d", Stage.DENOISE, 1.0)]
        assert book.record(conn, draft, _request("lightning"), routed, now=NOW) == 1
        assert book.record(conn, draft, _request("lightning"), routed, now=NOW) == 0  # once per line
        c = saving_lines.c
        rows = conn.execute(select(c.job_id, c.mechanism, c.amount, c.tags).order_by(c.id)).all()
        count = conn.execute(select(func.count()).select_from(saving_lines)).scalar_one()
    assert count == 3
    assert [(job, mechanism) for job, mechanism, _, _ in rows] == [
        ("b", "batching"),
        ("b", "batching"),
        ("d", "routing"),
    ]
    assert rows[0][2] == cost_of_seconds(7.0, PRICE) - cost_of_seconds(9.0, PRICE)  # above the solo mean
    assert rows[2][2] == cost_of_seconds(7.0, PRICE) - cost_of_seconds(1.0, PRICE)
    assert rows[2][3] == {"routed_from": "speed"}


def test_a_request_not_routed_has_no_routing_saving(migrated_engine: Engine) -> None:
    preset = "speed"
    book = SavingsBook()
    attribution = Attribution("acme", "default", preset, "interactive", {"routed_from": preset})
    with migrated_engine.begin() as conn:
        book.record(
            conn, [_device("a", Stage.DENOISE, 3.0)], _request(preset), attribution, now=NOW, learn=True
        )
        assert (
            book.record(conn, [_device("b", Stage.DENOISE, 3.0)], _request(preset), attribution, now=NOW) == 0
        )
