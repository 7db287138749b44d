"""`rendercost render PROMPT`: render on this machine, write the files, print what each one cost.

The command reads in four steps, each a function below:

    1. check the request   everything a flag can get wrong, before any model work or file write;
                           with ``--rewrite``, the prompt rewritten (``cli.render_rewrite``)
    2. admit it            through the front door (``cli.local_queue``: the settings' embedded store,
                           tenant ``cli``, no limits): an identical earlier render (same weights,
                           prompt, seed, size, ...) is answered from the exact-result cache
                           (byte-identical files, $0 paid, cost avoided), else the job is queued
    3. render it           a burst worker renders the queue as every worker does (one batched call per
                           ``max_batch_size`` images, priced per stage, the receipt embedded, storage
                           priced on the final bytes, the files stored and cached)
    4. report              the stored files copied to ``--out``; a table per image (or one JSON
                           document with ``--json``) from the job's receipts

A random seed (``--seed -1``) is never cached, and ``--no-cache`` neither reads nor writes the cache.
Files are written atomically (temp file + rename). Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from rendercost.admission.lifecycle import check_retention
from rendercost.admission.styles import check_style_names
from rendercost.cli.common import Choices, cli_errors, load_settings
from rendercost.domain.controls import CacheMode, CacheOutcome, CachePolicy, Retention, RewriteRecord
from rendercost.domain.costs import Receipt
from rendercost.domain.jobs import Job, JobState
from rendercost.domain.money import ZERO, quantize
from rendercost.domain.presets import DEFAULT_PRESET, PRESETS, REQUEST_SAMPLERS, get_preset, parse_sampler
from rendercost.domain.specs import (
    RANDOM_SEED,
    OutputFormat,
    Priority,
    RenderRequest,
    RenderSpec,
    check_overrides,
    check_seed,
    check_size,
    parse_size,
    resolve_seed,
)
from rendercost.errors import InvalidRequest, RenderFailed
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import DEVICE_HOUR, GB_MONTH
from rendercost.settings import ModelConfig, Settings

if TYPE_CHECKING:
    from rendercost.cli.local_queue import LocalQueue
    from rendercost.cli.render_rewrite import CliRewrite
    from rendercost.execution.models.registry import ModelRegistry

STORAGE_BACKEND = "local"  # the CLI writes to this machine's disk
_UNIT_SHORT = {DEVICE_HOUR: "h", GB_MONTH: "GB-mo"}
_CACHE_STATUS = {CacheOutcome.HIT: "hit", CacheOutcome.MISS: "miss"}  # anything else: "bypass"
PRESET_CHOICES = Choices("preset", tuple(PRESETS))
FORMAT_CHOICES = Choices("format", tuple(format_.value for format_ in OutputFormat), {"jpg": "jpeg"})
SAMPLER_CHOICES = Choices("sampler", tuple(sampler.value for sampler in REQUEST_SAMPLERS))


@dataclass(frozen=True)
class _Outcome:
    """One written image and its receipt for this call."""

    path: Path
    spec: RenderSpec
    receipt: Receipt
    cache: str  # "hit", "miss" or "bypass"


def register(app: typer.Typer) -> None:
    """Add ``render`` to ``app``."""
    app.command("render")(render)


def render(
    ctx: typer.Context,
    prompt: Annotated[str, typer.Argument(help="What to render.")],
    negative: Annotated[str, typer.Option("--negative", help="Negative prompt (CFG presets only).")] = "",
    preset: Annotated[
        str, typer.Option(**PRESET_CHOICES.option("Steps, guidance and sampler."))
    ] = DEFAULT_PRESET,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, multiples of 8.")] = None,
    n: Annotated[int, typer.Option("--n", help="Images; seeds SEED .. SEED+N-1.")] = 1,
    seed: Annotated[int, typer.Option(help="First seed; -1 picks one at random.")] = 0,
    model: Annotated[str | None, typer.Option(help="Configured model name or a diffusers folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output file (N>1: STEM-I.SUFFIX).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", **FORMAT_CHOICES.option("File format (default: --out's)."))
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    truncate: Annotated[bool, typer.Option(help="Cut over-long prompts to the model's limit.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    rewrite: Annotated[
        bool, typer.Option("--rewrite", help="Rewrite PROMPT into a detailed one first (LLM or builtin).")
    ] = False,
    retention_days: Annotated[
        int | None,
        typer.Option("--retention-days", help="Keep the stored images this long (priced for it)."),
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Denoising steps (default: the preset's).")] = None,
    guidance_scale: Annotated[
        float | None, typer.Option("--guidance-scale", help="CFG scale (default: the preset's).")
    ] = None,
    sampler: Annotated[
        str | None, typer.Option(**SAMPLER_CHOICES.option("Sampler (default: the preset's)."))
    ] = None,
    style: Annotated[
        list[str] | None, typer.Option("--style", help="A style set name; repeat for more (in order).")
    ] = None,
) -> None:
    """Render PROMPT on this machine and print what each image cost, stage by stage."""
    settings = load_settings(ctx)
    with cli_errors():
        check_retention(retention_days, settings.artifact_max_retention_days, param="--retention-days")
        settings = _with_model_path(settings, model)
        output_format = _output_format(fmt, out)
        width, height = parse_size(size or settings.default_size)
        check_overrides(
            steps,
            guidance_scale,
            max_steps=settings.max_steps,
            max_guidance_scale=settings.max_guidance_scale,
        )
        spec = RenderSpec(
            prompt=prompt,
            negative_prompt=negative,
            model=model or settings.default_model,
            preset=preset,
            width=width,
            height=height,
            seed=seed,
            output_format=output_format,
            steps=steps,
            guidance_scale=guidance_scale,
            sampler=parse_sampler(sampler) if sampler is not None else None,
        )
        styles = tuple(style or ())
        check_style_names(styles, param="style")
        _check_request(spec, n, settings)
        _check_out(out, n)
        catalog = PriceCatalog.load(settings.catalog_path)
        catalog.device_price(settings.device_type, settings.pricing_model, settings.region)
        catalog.storage_prices(STORAGE_BACKEND, settings.region)
        # Heavy imports (torch, diffusers) only once the cheap checks have passed.
        from rendercost.execution.models.registry import ModelRegistry

        registry = ModelRegistry(settings)
        spec = _resolve_seed(_check_with_model(registry, spec, truncate), n)
        rewritten = None
        if rewrite:
            from rendercost.cli.render_rewrite import rewrite_spec  # the LLM gateway

            spec, rewritten = rewrite_spec(
                settings, registry, spec, use_cache=not no_cache, truncate=truncate
            )
        mode = CacheMode.NO_STORE if no_cache or seed == RANDOM_SEED else CacheMode.DEFAULT
        request = RenderRequest(
            spec=spec,
            n=n,
            priority=Priority.INTERACTIVE,
            cache=CachePolicy(mode),
            rewrite=rewritten.record if rewritten is not None else None,
            retention=Retention(asked_days=retention_days),
            styles=styles,
        )
        paths = _output_paths(_default_out(spec, out), n)
        outcomes = _admit_and_render(settings, registry, request, paths)
    _report(outcomes, json_output, rewritten)


# 1. check the request ------------------------------------------------------------------------------


def _with_model_path(settings: Settings, model: str | None) -> Settings:
    """Settings that also know ``model`` when it is a diffusers folder or a single-file ``.safetensors``
    checkpoint rather than a configured name."""
    if model is None or model in settings.models or model == settings.default_model:
        return settings
    path = Path(model).expanduser()
    if not (path.is_dir() or (path.is_file() and path.suffix == ".safetensors")):
        return settings  # an unknown name: the registry names the configured ones
    models = {**settings.models, model: ModelConfig(source=str(Path(model).expanduser()))}
    return settings.model_copy(update={"models": models})


def _output_format(fmt: str | None, out: Path | None) -> OutputFormat:
    """``--format``, else the format ``--out``'s suffix names, else PNG; they must agree."""
    implied = OutputFormat.from_suffix(out.suffix) if out is not None else None
    if fmt is None:
        return implied or OutputFormat.PNG
    chosen = OutputFormat.parse(fmt)
    if implied is not None and implied is not chosen:
        raise InvalidRequest(f"--out {out} is a {implied} file name but --format is {chosen}", param="format")
    return chosen


def _check_request(spec: RenderSpec, n: int, settings: Settings) -> None:
    """Everything that needs no model: prompt, preset, size, count and seed."""
    if not spec.prompt.strip():
        raise InvalidRequest("the prompt is empty", param="prompt")
    get_preset(spec.preset)
    check_size(spec.width, spec.height, min_side=settings.min_side, max_side=settings.max_side)
    if not 1 <= n <= settings.max_n:
        raise InvalidRequest(f"--n {n} is outside 1..{settings.max_n}", param="n")
    check_seed(spec.seed, n)


def _check_with_model(registry: ModelRegistry, spec: RenderSpec, truncate: bool) -> RenderSpec:
    """Model name, preset availability and prompt lengths (tokenizers only, no weights loaded)."""
    registry.folder(spec.model)  # UnknownModel names the configured ones; builds the tiny model once
    registry.check_preset(spec.model, spec.preset)
    prompt = registry.check_prompt(spec.model, spec.prompt, truncate)
    negative = spec.negative_prompt
    if negative and spec.run_preset().uses_cfg:
        negative = registry.check_prompt(spec.model, negative, truncate, param="negative_prompt")
    return replace(spec, prompt=prompt, negative_prompt=negative)


def _resolve_seed(spec: RenderSpec, n: int) -> RenderSpec:
    """``spec`` with a random seed (-1) replaced by one that leaves room for ``n`` images."""
    return replace(spec, seed=resolve_seed(spec.seed, n))


def _default_out(spec: RenderSpec, out: Path | None) -> Path:
    """``--out``, else ``rendercost-SEED.SUFFIX`` in the current folder."""
    return out if out is not None else Path.cwd() / f"rendercost-{spec.seed}.{spec.output_format.suffix}"


def _output_paths(base: Path, n: int) -> tuple[Path, ...]:
    """``base`` for one image; ``STEM-I.SUFFIX`` for each of ``n`` > 1."""
    return (base,) if n == 1 else tuple(base.with_name(f"{base.stem}-{i}{base.suffix}") for i in range(n))


def _check_out(out: Path | None, n: int) -> None:
    """The output folder exists and no output name is a folder."""
    if out is None:
        return  # the current folder
    if not out.parent.is_dir():
        raise InvalidRequest(f"--out folder {out.parent} does not exist", param="out")
    for path in _output_paths(out, n):
        if path.is_dir():
            raise InvalidRequest(f"--out {path} is a directory", param="out")


# 2 and 3. admit it, render it ---------------------------------------------------------------------


def _admit_and_render(
    settings: Settings, registry: ModelRegistry, request: RenderRequest, paths: Sequence[Path]
) -> list[_Outcome]:
    """Admit ``request`` (tenant ``cli``), render the queue with a burst worker unless the cache
    answered it, and copy the job's stored files to ``paths``."""
    from rendercost.admission.ticket import Ticket
    from rendercost.cli.local_queue import CLI_TENANT, local_queue
    from rendercost.execution.models.catalog import RegistryCatalog
    from rendercost.execution.worker.setup import build_runner, default_worker_id

    catalog = RegistryCatalog(registry, settings.default_model)
    with local_queue(settings, catalog, registry.fingerprint) as local:
        admitted = local.admission.admit(Ticket(CLI_TENANT, request, cache=request.cache.mode))
        job = admitted.job
        assert job is not None  # noqa: S101  the CLI asks for cache answers as jobs
        if job.state is not JobState.SUCCEEDED:
            local.worker(build_runner(settings, registry), worker_id=default_worker_id()).run_burst()
            job = local.store.get(job.id)
        return _copy_out(local, _finished(job), paths)


def _finished(job: Job) -> Job:
    if job.state is not JobState.SUCCEEDED or job.result is None:
        raise RenderFailed(f"job {job.id} {job.state}: {job.last_error or 'no result'}")
    return job


def _copy_out(local: LocalQueue, job: Job, paths: Sequence[Path]) -> list[_Outcome]:
    """The job's stored files (receipts inside) written to ``paths``, with their receipts."""
    assert job.result is not None  # noqa: S101  only called with a finished job
    status = _CACHE_STATUS.get(job.request.cache.outcome, "bypass")
    outcomes = []
    for spec, path, image in zip(job.request.image_specs(), paths, job.result.images, strict=True):
        _write_atomic(path, local.artifacts.get(image.artifact_key))
        outcomes.append(_Outcome(path, replace(spec, seed=image.seed), image.receipt, status))
    return outcomes


def _write_atomic(path: Path, data: bytes) -> None:
    """``data`` appears at ``path`` whole or not at all (temp file in the same folder, then rename)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o644)  # mkstemp creates 0600; an image is an ordinary file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# 4. report -----------------------------------------------------------------------------------------


def _report(outcomes: Sequence[_Outcome], json_output: bool, rewritten: CliRewrite | None) -> None:
    total = sum((outcome.receipt.total for outcome in outcomes), ZERO)
    if json_output:
        document: dict[str, Any] = {
            "images": [
                {
                    "path": str(outcome.path),
                    "seed": outcome.spec.seed,
                    "media_type": outcome.spec.output_format.media_type,
                    "prompt": outcome.spec.prompt,
                    "receipt": outcome.receipt.to_dict(),
                    "cache": outcome.cache,
                }
                for outcome in outcomes
            ],
            "total_usd": format(total, "f"),
            "cost_avoided_usd": format(sum((o.receipt.total_avoided for o in outcomes), ZERO), "f"),
        }
        if rewritten is not None:
            document["rewrite"] = _rewrite_json(rewritten.record)
        print(json.dumps(document, indent=2))
        return
    console = Console()
    if rewritten is not None:
        console.print(_rewrite_summary(rewritten), highlight=False)
    for outcome in outcomes:
        console.print(_receipt_table(outcome))
    if len(outcomes) > 1:
        console.print(f"total for {len(outcomes)} images: ${_usd(total)}")


def _rewrite_json(record: RewriteRecord) -> dict[str, Any]:
    """The ``rewrite`` object of ``--json``: the record without its line (the receipts carry it), and
    ``dropped`` only when the rewrite was dropped."""
    data = record.to_dict()
    del data["line"]
    if record.dropped is None:
        del data["dropped"]
    return data


def _rewrite_summary(rewritten: CliRewrite) -> str:
    record = rewritten.record
    who = f"{record.provider}/{record.model}" + (" (fallback)" if record.fallback else "")
    tokens = f"{record.input_tokens}+{record.output_tokens} tokens, rewrite cache {record.cache}"
    if not record.used:
        return f"rewrite by {who} dropped, {record.dropped}; rendered the prompt as given ({tokens})"
    return f"prompt rewritten by {who} ({tokens}):\n  {record.revised_prompt}"


def _receipt_table(outcome: _Outcome) -> Table:
    receipt = outcome.receipt
    avoided = receipt.total_avoided > 0
    title = f"{outcome.path}  seed {outcome.spec.seed}  cache {outcome.cache}"
    table = Table(title=title, title_justify="left")
    columns = ["stage", "device-s", "unit price", "cost (USD)", *(["avoided (USD)"] if avoided else [])]
    for column in columns:
        table.add_column(column, justify="left" if column == "stage" else "right", no_wrap=True)
    for line in receipt.lines:
        seconds = f"{line.device_seconds:.4f}" if line.unit == DEVICE_HOUR else "-"
        unit_price = f"{format(line.unit_price, 'f')}/{_UNIT_SHORT.get(line.unit, line.unit)}"
        row = [
            str(line.stage),
            seconds,
            unit_price,
            _usd(line.cost),
            *([_usd(line.cost_avoided)] if avoided else []),
        ]
        table.add_row(*row)
    table.add_section()
    total = ["total", f"{receipt.device_seconds:.4f}", "", _usd(receipt.total)]
    table.add_row(*total, *([_usd(receipt.total_avoided)] if avoided else []), style="bold")
    return table


def _usd(amount: Decimal) -> str:
    """An amount with the ledger's 10 decimal places."""
    return format(quantize(amount), "f")
