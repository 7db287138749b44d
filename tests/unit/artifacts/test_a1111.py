"""A1111's ``parameters`` text: written beside the receipt in PNGs, parsed back to the settings."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from rendercost.artifacts.a1111 import A1111Parameters, format_parameters, parameters_text, parse_parameters
from rendercost.artifacts.metadata import embed_receipt, read_receipt
from rendercost.domain.costs import Receipt
from rendercost.domain.specs import LoraRef, RenderSpec
from rendercost.ledger.receipts import receipt_payload

SPEC = RenderSpec(
    prompt='a red fox, in "deep" snow',
    negative_prompt="blurry, lowres",
    model="default",
    preset="speed",
    width=832,
    height=1216,
    seed=4242,
    loras=(LoraRef("film-grain", 0.8),),
)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_text_is_a1111s_format() -> None:
    text = parameters_text(receipt_payload(SPEC, Receipt(())))
    assert text == (
        'a red fox, in "deep" snow <lora:film-grain:0.8>\n'
        "Negative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: DPM++ 2M SDE Karras, CFG scale: 4.0, Seed: 4242, Size: 832x1216, "
        "Model: default, Version: rendercost"
    )


def test_a_written_text_parses_back_to_the_settings() -> None:
    params = A1111Parameters(
        prompt="line one\nline two",
        negative_prompt="",
        steps=4,
        sampler="Euler",
        cfg_scale=1.0,
        seed=7,
        width=64,
        height=64,
        model="my, model",  # a comma: written as a JSON string
        model_hash="0123456789",
        loras=(("a", 1.0), ("b", -0.5)),
    )
    assert parse_parameters(format_parameters(params)) == params


def test_a_text_without_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="Steps and Seed"):
        parse_parameters("just a prompt")


def test_pngs_carry_it_beside_the_receipt_and_restamping_replaces_it() -> None:
    payload = receipt_payload(SPEC, Receipt(()))
    stamped = embed_receipt(_png(), "image/png", payload)
    restamped = embed_receipt(stamped, "image/png", {**payload, "seed": 4243})
    with Image.open(io.BytesIO(restamped)) as image:
        text = image.text  # type: ignore[attr-defined]
    assert parse_parameters(text["parameters"]).seed == 4243
    assert read_receipt(restamped, "image/png") == {**payload, "seed": 4243}
    assert len(restamped) == len(stamped)  # replaced, not appended
