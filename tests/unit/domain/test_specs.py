import pytest

from rendercost.domain.controls import ClientInfo
from rendercost.domain.presets import PRESETS, Sampler, get_preset
from rendercost.domain.specs import (
    SDXL_SIZES,
    LoraRef,
    OutputFormat,
    Priority,
    RenderRequest,
    RenderSpec,
    check_size,
    parse_size,
)
from rendercost.errors import InvalidRequest, UnknownPreset


def test_presets_match_the_reference_values() -> None:
    table = {name: (p.steps, p.guidance_scale, p.sampler, p.speed_lora_weight) for name, p in PRESETS.items()}
    assert table == {
        "quality": (60, 4.0, Sampler.DPMPP_2M_SDE_KARRAS, 0.0),
        "speed": (30, 4.0, Sampler.DPMPP_2M_SDE_KARRAS, 0.0),
        "extreme-speed": (8, 1.0, Sampler.LCM, 1.0),
        "lightning": (4, 1.0, Sampler.EULER_TRAILING, 1.0),
        "hyper-sd": (4, 1.0, Sampler.DPMPP_SDE_KARRAS, 0.8),
    }
    assert [p.name for p in PRESETS.values() if p.uses_cfg] == ["quality", "speed"]
    assert all((p.speed_lora is None) == p.uses_cfg for p in PRESETS.values())


def test_unknown_preset_names_the_valid_ones() -> None:
    with pytest.raises(UnknownPreset) as info:
        get_preset("turbo")
    assert "lightning" in info.value.message
    assert info.value.param == "preset"


def test_there_are_26_sdxl_sizes_and_all_are_accepted() -> None:
    assert len(SDXL_SIZES) == 26
    for width, height in SDXL_SIZES:
        check_size(width, height, min_side=256, max_side=2048)


@pytest.mark.parametrize("text,expected", [("1024x1024", (1024, 1024)), (" 832*1216 ", (832, 1216))])
def test_parse_size(text: str, expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "1024", "axb", "1024x", "-8x8"])
def test_parse_size_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_size(text)


@pytest.mark.parametrize("size", [(1004, 1024), (1024, 1001), (128, 1024), (4096, 1024)])
def test_check_size_rejects_off_grid_and_out_of_range(size: tuple[int, int]) -> None:
    with pytest.raises(InvalidRequest) as info:
        check_size(*size, min_side=256, max_side=2048)
    assert info.value.param == "size"


def test_request_expands_into_consecutive_seeds() -> None:
    request = RenderRequest(RenderSpec(prompt="a cat", seed=41), n=3)
    assert [spec.seed for spec in request.image_specs()] == [41, 42, 43]


def test_batch_key_ignores_prompt_seed_and_lora_order() -> None:
    a = RenderSpec(prompt="a", seed=1, loras=(LoraRef("x", 0.5), LoraRef("y")))
    b = RenderSpec(prompt="b", negative_prompt="n", seed=2, loras=(LoraRef("y"), LoraRef("x", 0.5)))
    assert a.batch_key == b.batch_key
    assert a.batch_key != RenderSpec(prompt="a", width=832, height=1216).batch_key


def test_content_hash_changes_with_every_pixel_deciding_field() -> None:
    base = RenderSpec(prompt="a", seed=1)
    variants = [
        RenderSpec(prompt="b", seed=1),
        RenderSpec(prompt="a", seed=2),
        RenderSpec(prompt="a", seed=1, negative_prompt="x"),
        RenderSpec(prompt="a", seed=1, preset="lightning"),
        RenderSpec(prompt="a", seed=1, width=832, height=1216),
        RenderSpec(prompt="a", seed=1, loras=(LoraRef("x"),)),
        RenderSpec(prompt="a", seed=1, output_format=OutputFormat.WEBP),
    ]
    hashes = {base.content_hash("w")} | {v.content_hash("w") for v in variants}
    assert len(hashes) == len(variants) + 1
    assert base.content_hash("w") != base.content_hash("other-weights")


def test_request_round_trips_through_json_dict() -> None:
    request = RenderRequest(
        RenderSpec(prompt="p", loras=(LoraRef("x", 0.7),), output_format=OutputFormat.JPEG),
        n=2,
        priority=Priority.BATCH,
        styles=("cinematic",),
        client=ClientInfo("jobs", "u1"),
    )
    assert RenderRequest.from_dict(request.to_dict()) == request
