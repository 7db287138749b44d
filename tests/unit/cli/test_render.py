"""`rendercost render` end to end on the real tiny model (CPU, 64 px, the 4-step lightning preset)."""

import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner, Result

from rendercost.artifacts.metadata import read_receipt
from rendercost.cli import app
from rendercost.domain.specs import MAX_SEED
from tests.fixtures.single_file import TinyCheckpoint

pytestmark = pytest.mark.slow

FAST = ["--preset", "lightning", "--size", "64x64"]


@pytest.fixture
def env(tiny_model_dir: Path) -> dict[str, str | None]:
    return {
        "RENDERCOST_MODELS__DEFAULT__SOURCE": str(tiny_model_dir),
        "RENDERCOST_MIN_SIDE": "64",
        "RENDERCOST_MAX_BATCH_SIZE": "2",
        "RENDERCOST_CONFIG": None,
        "RENDERCOST_DATABASE_URL": None,
        "RENDERCOST_LLM_PROVIDERS": None,
    }


def _render(tmp_path: Path, env: dict[str, str | None], *args: str) -> Result:
    runner = CliRunner(env=env)
    return runner.invoke(app, ["--data-dir", str(tmp_path / "data"), "render", *args])


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _embedded(path: Path) -> dict[str, Any]:
    with Image.open(path) as image:
        payload: dict[str, Any] = json.loads(image.text["rendercost"])  # type: ignore[attr-defined]
    return payload


def _pixels(path: Path) -> np.ndarray:  # type: ignore[type-arg]
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _assert_adds_up(receipt: dict[str, Any]) -> None:
    assert sum(Decimal(line["cost_usd"]) for line in receipt["lines"]) == Decimal(receipt["total_usd"])


def test_same_command_twice_gives_byte_identical_files_with_the_receipt(
    tmp_path: Path, env: dict[str, str | None]
) -> None:
    out = tmp_path / "a.png"
    args = ["white sneaker on beach", "--seed", "7", "--out", str(out), *FAST]
    first = _render(tmp_path, env, *args)
    assert first.exit_code == 0, first.output
    assert "denoise" in first.stdout and "total" in first.stdout
    first_bytes = out.read_bytes()
    payload = _embedded(out)
    assert (payload["prompt"], payload["seed"], payload["preset"], payload["steps"]) == (
        "white sneaker on beach",
        7,
        "lightning",
        4,
    )
    assert payload["size"] == "64x64"
    receipt = payload["receipt"]
    _assert_adds_up(receipt)
    stages = [line["stage"] for line in receipt["lines"]]
    assert stages == ["text_encode", "prepare_latents", "denoise", "decode", "postprocess", "storage"]
    assert Decimal(receipt["total_usd"]) > 0

    second = _json(_render(tmp_path, env, *args, "--json"))
    assert out.read_bytes() == first_bytes
    [image] = second["images"]
    assert image["cache"] == "hit"
    assert Decimal(second["total_usd"]) == 0
    assert Decimal(image["receipt"]["cost_avoided_usd"]) == Decimal(receipt["total_usd"])

    again = _json(_render(tmp_path, env, *args, "--json", "--no-cache"))
    assert again["images"][0]["cache"] == "bypass"
    assert np.array_equal(_pixels(out), np.asarray(Image.open(io.BytesIO(first_bytes)).convert("RGB")))
    assert _embedded(out)["receipt"] != receipt  # a new render: new measured seconds, new batch
    _assert_adds_up(_embedded(out)["receipt"])


def test_n_images_are_batched_and_named_by_index(tmp_path: Path, env: dict[str, str | None]) -> None:
    out = tmp_path / "shoe.webp"
    document = _json(
        _render(tmp_path, env, "red shoe", "--n", "3", "--seed", "40", "--out", str(out), "--json", *FAST)
    )
    images = document["images"]
    assert [image["seed"] for image in images] == [40, 41, 42]
    assert [Path(image["path"]).name for image in images] == ["shoe-0.webp", "shoe-1.webp", "shoe-2.webp"]
    assert {image["cache"] for image in images} == {"miss"}
    batch_sizes = [image["receipt"]["lines"][0]["batch_size"] for image in images]
    assert batch_sizes == [2, 2, 1]  # max_batch_size 2
    total = Decimal(0)
    for image in images:
        payload = read_receipt(Path(image["path"]).read_bytes(), "image/webp")
        assert payload is not None
        assert payload["receipt"] == image["receipt"]
        _assert_adds_up(image["receipt"])
        total += Decimal(image["receipt"]["total_usd"])
    assert Decimal(document["total_usd"]) == total
    assert not out.exists()


def test_random_seed_is_reported_and_never_cached(
    tmp_path: Path, env: dict[str, str | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    document = _json(_render(tmp_path, env, "a lamp", "--seed", "-1", "--format", "jpeg", "--json", *FAST))
    [image] = document["images"]
    assert 0 <= image["seed"] <= MAX_SEED
    assert image["cache"] == "bypass"
    assert Path(image["path"]).resolve() == tmp_path / f"rendercost-{image['seed']}.jpg"
    payload = read_receipt(Path(image["path"]).read_bytes(), "image/jpeg")
    assert payload is not None and payload["seed"] == image["seed"]


def test_truncate_cuts_a_long_prompt_to_the_limit(tmp_path: Path, env: dict[str, str | None]) -> None:
    long_prompt = " ".join(["sneaker"] * 120)
    refused = _render(tmp_path, env, long_prompt, "--out", str(tmp_path / "x.png"), *FAST)
    assert refused.exit_code == 2
    assert "tokens" in refused.stderr
    document = _json(
        _render(tmp_path, env, long_prompt, "--truncate", "--out", str(tmp_path / "x.png"), "--json", *FAST)
    )
    prompt = document["images"][0]["prompt"]
    assert 0 < len(prompt.split()) < 120


BAD_INPUTS = [
    (["--preset", "turbo"], "unknown preset 'turbo'"),
    (["--model", "nope"], "unknown model 'nope'"),
    (["--size", "65x64"], "multiples of 8"),
    (["--size", "32x32"], "between 64 and"),
    (["--size", "big"], "WIDTHxHEIGHT"),
    (["--n", "0"], "outside 1..8"),
    (["--n", "9"], "outside 1..8"),
    (["--seed", "-2"], "seed must be -1 (random) or between 0 and"),
    (["--seed", str(MAX_SEED), "--n", "2"], "seed must be -1 (random) or between 0 and"),
    (["--format", "gif"], "unknown format 'gif'"),
    (["--format", "jpeg"], "png file name but --format is jpeg"),
    (["--out", "{out}/missing/a.png"], "does not exist"),
    (["--out", "{out}"], "is a directory"),
]


@pytest.mark.parametrize(("flags", "message"), BAD_INPUTS, ids=[str(m) for _, m in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, env: dict[str, str | None], flags: list[str], message: str
) -> None:
    outdir = tmp_path / "out"
    outdir.mkdir()
    base = ["white sneaker", "--preset", "lightning", "--size", "64x64", "--out", str(outdir / "a.png")]
    args = [*base, *(flag.format(out=outdir) for flag in flags)]  # a repeated option: the last one wins
    result = _render(tmp_path, env, *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert message in lines[0]
    assert list(outdir.iterdir()) == []
    assert result.stdout == ""


def test_empty_prompt_is_refused(tmp_path: Path, env: dict[str, str | None]) -> None:
    result = _render(tmp_path, env, "   ", "--out", str(tmp_path / "a.png"), *FAST)
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: the prompt is empty"
    assert not (tmp_path / "a.png").exists()


def test_own_price_catalog_is_used(tmp_path: Path, env: dict[str, str | None]) -> None:
    catalog = tmp_path / "prices.toml"
    catalog.write_text(
        "[devices.my-box.on_demand]\nhome = 3600\n[storage.local.home]\ngb_month = 0\nput_per_1000 = 0\n"
    )
    own = {**env, "RENDERCOST_CATALOG_PATH": str(catalog), "RENDERCOST_DEVICE_TYPE": "my-box"}
    args = ["a cup", "--out", str(tmp_path / "cup.png"), "--no-cache", "--json", *FAST]
    missing_region = _render(tmp_path, own, *args)
    assert missing_region.exit_code == 2
    assert "no on_demand price for device type 'my-box' in region 'us-east-1'" in missing_region.stderr
    assert not (tmp_path / "cup.png").exists()
    document = _json(_render(tmp_path, {**own, "RENDERCOST_REGION": "home"}, *args))
    lines = document["images"][0]["receipt"]["lines"]
    denoise = next(line for line in lines if line["stage"] == "denoise")
    assert (denoise["device_type"], denoise["unit_price"]) == ("my-box", "3600")
    # 3600 USD per hour is 1 USD per device-second
    assert Decimal(denoise["cost_usd"]) == Decimal(repr(denoise["device_seconds"])).quantize(Decimal("1e-10"))


def test_a_single_file_checkpoint_renders_with_overrides_and_styles(
    tmp_path: Path, env: dict[str, str | None], tiny_checkpoint: TinyCheckpoint
) -> None:
    from rendercost.admission.styles import apply_styles
    from rendercost.artifacts.a1111 import parse_parameters

    file_env = {
        **env,
        "RENDERCOST_MODELS__TINYFILE__SOURCE": str(tiny_checkpoint.path),
        "RENDERCOST_MODELS__TINYFILE__CONFIG": str(tiny_checkpoint.config),
    }
    out = tmp_path / "fox.png"
    args = ["a fox", "--model", "tinyfile", "--size", "64x64", "--seed", "5", "--out", str(out), "--json"]
    overrides = ["--steps", "2", "--guidance-scale", "3", "--sampler", "dpmpp_2m", "--style", "noir"]
    _json(_render(tmp_path, file_env, *args, *overrides))

    payload = _embedded(out)
    with Image.open(out) as image:
        params = parse_parameters(image.text["parameters"])  # type: ignore[attr-defined]
    file_hash = hashlib.sha256(tiny_checkpoint.path.read_bytes()).hexdigest()
    assert payload["model_hash"] == file_hash and params.model_hash == file_hash[:10]
    assert (params.steps, params.cfg_scale, params.sampler, params.seed) == (2, 3.0, "DPM++ 2M", 5)
    assert params.prompt == apply_styles("a fox", "", ["noir"]).prompt


def test_out_of_range_overrides_and_unknown_styles_exit_2(tmp_path: Path, env: dict[str, str | None]) -> None:
    for bad, param in (
        (["--steps", "0"], "steps"),
        (["--sampler", "plms"], "sampler"),
        (["--style", "nope"], "style"),
    ):
        result = _render(tmp_path, env, "a fox", *FAST, *bad)
        assert result.exit_code == 2, result.output
        assert param in result.output
