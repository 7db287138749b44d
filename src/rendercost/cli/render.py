"""`rendercost render PROMPT`: render on this machine, write the files, print what each one cost.

The command reads in four steps, each a function below:

    1. check the request   everything a flag can get wrong, before any model work or file write;
                           with ``--rewrite``, the prompt rewritten (``cli.render_rewrite``)
    2. look up the cache   an identical earlier render (same weights, prompt, seed, size, ...) is
                           copied from the exact-result cache: byte-identical file, $0 paid, cost avoided
    3. render the rest     one batched pipeline call per ``max_batch_size`` images, priced per stage
                           with the catalog, the receipt embedded in each file, the file cached
    4. report              a table per image (or one JSON document with ``--json``)

A random seed (``--seed -1``) is never cached, and ``--no-cache`` neither reads nor writes the cache.
Files are written atomically (temp file + rename). Bad input exits 2 with one line on stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rendercost.artifacts.local import LocalArtifactStore
from rendercost.artifacts.metadata import embed_receipt
from rendercost.caches.http_result import hit_receipt
from rendercost.caches.result_cache import ResultCache, result_key
from rendercost.cli.common import cli_errors, load_settings
from rendercost.db.engine import create_db_engine
from rendercost.domain.batch import BatchItem, BatchPlan
from rendercost.domain.controls import RewriteRecord
from rendercost.domain.costs import CostLine, PricingModel, Receipt
from rendercost.domain.money import ZERO, quantize
from rendercost.domain.presets import DEFAULT_PRESET, get_preset
from rendercost.domain.runner import StepCallback
from rendercost.domain.specs import (
    RANDOM_SEED,
    OutputFormat,
    RenderSpec,
    check_seed,
    check_size,
    parse_size,
    resolve_seed,
)
from rendercost.errors import InvalidRequest
from rendercost.ledger.catalog import PriceCatalog
from rendercost.ledger.pricing import DEVICE_HOUR, GB_MONTH, price_batch, price_storage, split_line
from rendercost.ledger.receipts import receipt_payload
from rendercost.settings import ModelConfig, Settings

if TYPE_CHECKING:
    from rendercost.cli.render_rewrite import CliRewrite
    from rendercost.execution.models.registry import ModelRegistry

STORAGE_BACKEND = "local"  # the CLI writes to this machine's disk
_UNIT_SHORT = {DEVICE_HOUR: "h", GB_MONTH: "GB-mo"}


@dataclass(frozen=True)
class _Request:
    """A checked render request: one spec per image, and where each file goes."""

    specs: tuple[RenderSpec, ...]  # seeds seed .. seed + n - 1
    paths: tuple[Path, ...]  # one output file per spec
    use_cache: bool  # False for --no-cache and random seeds
    charged_before: tuple[CostLine, ...] = ()  # per image: its share of the prompt rewrite (--rewrite)


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
        str, typer.Option(help="quality, speed, extreme-speed, lightning, hyper-sd.")
    ] = DEFAULT_PRESET,
    size: Annotated[str | None, typer.Option(help="WIDTHxHEIGHT, multiples of 8.")] = None,
    n: Annotated[int, typer.Option("--n", help="Images; seeds SEED .. SEED+N-1.")] = 1,
    seed: Annotated[int, typer.Option(help="First seed; -1 picks one at random.")] = 0,
    model: Annotated[str | None, typer.Option(help="Configured model name or a diffusers folder.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output file (N>1: STEM-I.SUFFIX).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="png, webp or jpeg (default: --out's).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    truncate: Annotated[bool, typer.Option(help="Cut over-long prompts to the model's limit.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the cache.")] = False,
    rewrite: Annotated[
        bool, typer.Option("--rewrite", help="Rewrite PROMPT into a detailed one first (LLM or builtin).")
    ] = False,
) -> None:
    """Render PROMPT on this machine and print what each image cost, stage by stage."""
    settings = load_settings(ctx)
    with cli_errors():
        settings = _with_model_path(settings, model)
        model_name = model or settings.default_model
        output_format = _output_format(fmt, out)
        width, height = parse_size(size or settings.default_size)
        spec = RenderSpec(
            prompt=prompt,
            negative_prompt=negative,
            model=model_name,
            preset=preset,
            width=width,
            height=height,
            seed=seed,
            output_format=output_format,
        )
        _check_request(spec, n, settings)
        _check_out(out, n)
        catalog = PriceCatalog.load(settings.catalog_path)
        catalog.device_price(settings.device_type, settings.pricing_model, settings.region)
        catalog.storage_prices(STORAGE_BACKEND, settings.region)
        # Heavy imports (torch, diffusers) only once the cheap checks have passed.
        from rendercost.execution.models.registry import ModelRegistry

        registry = ModelRegistry(settings)
        spec = _resolve_seed(_check_with_model(registry, spec, truncate), n)
        use_cache = not no_cache and seed != RANDOM_SEED
        rewritten = None
        if rewrite:
            from rendercost.cli.render_rewrite import rewrite_spec  # the LLM gateway

            spec, rewritten = rewrite_spec(
                settings, registry, spec, use_cache=not no_cache, truncate=truncate
            )
        request = _expand(spec, n, out, use_cache=use_cache)
        if rewritten is not None:
            request = replace(request, charged_before=tuple(split_line(rewritten.line, "", n)))
        outcomes = _Renderer(settings, registry, catalog, quiet=json_output).run(request)
    _report(outcomes, json_output, rewritten)


# 1. check the request ------------------------------------------------------------------------------


def _with_model_path(settings: Settings, model: str | None) -> Settings:
    """Settings that also know ``model`` when it is a diffusers folder rather than a configured name."""
    if model is None or model in settings.models or model == settings.default_model:
        return settings
    if not Path(model).expanduser().is_dir():
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
    if negative and get_preset(spec.preset).uses_cfg:
        negative = registry.check_prompt(spec.model, negative, truncate, param="negative_prompt")
    return replace(spec, prompt=prompt, negative_prompt=negative)


def _resolve_seed(spec: RenderSpec, n: int) -> RenderSpec:
    """``spec`` with a random seed (-1) replaced by one that leaves room for ``n`` images."""
    return replace(spec, seed=resolve_seed(spec.seed, n))


def _expand(spec: RenderSpec, n: int, out: Path | None, *, use_cache: bool) -> _Request:
    """One spec per image (seeds ``spec.seed`` ..), and the output paths checked."""
    spec = _resolve_seed(spec, n)
    specs = tuple(replace(spec, seed=spec.seed + i) for i in range(n))
    base = out if out is not None else Path.cwd() / f"rendercost-{spec.seed}.{spec.output_format.suffix}"
    return _Request(specs, _output_paths(base, n), use_cache)


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


# 2 and 3. look up the cache, render the rest -------------------------------------------------------


class _Renderer:
    """Answers a checked request: cache hits copied, misses rendered in batches, every file written."""

    def __init__(
        self, settings: Settings, registry: ModelRegistry, catalog: PriceCatalog, *, quiet: bool
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.catalog = catalog
        self.quiet = quiet

    def run(self, request: _Request) -> list[_Outcome]:
        with self._cache(request.use_cache) as cache:
            store = LocalArtifactStore(self.settings.resolved_artifacts_dir) if cache is not None else None
            keys = [self._key(spec) for spec in request.specs] if cache is not None else []
            outcomes: dict[int, _Outcome] = {}
            if cache is not None and store is not None:
                outcomes = self._hits(request, keys, cache, store)
            missing = [i for i in range(len(request.specs)) if i not in outcomes]
            for i, outcome in self._render(request, missing, cache, store, keys):
                outcomes[i] = outcome
        return [outcomes[i] for i in range(len(request.specs))]

    @contextlib.contextmanager
    def _cache(self, use_cache: bool) -> Iterator[ResultCache | None]:
        if not use_cache or self.settings.result_cache_ttl_seconds <= 0:
            yield None
            return
        engine = create_db_engine(self.settings.resolved_database_url)
        try:
            from rendercost.db.migrate import migrate  # alembic

            migrate(engine)
            yield ResultCache(engine, self.settings.result_cache_ttl_seconds)
        finally:
            engine.dispose()

    def _key(self, spec: RenderSpec) -> str:
        return result_key(spec, self.registry.fingerprint(spec.model))

    def _hits(
        self, request: _Request, keys: list[str], cache: ResultCache, store: LocalArtifactStore
    ) -> dict[int, _Outcome]:
        hits: dict[int, _Outcome] = {}
        for i, (spec, path, key) in enumerate(zip(request.specs, request.paths, keys, strict=True)):
            entry = cache.get(key)
            if entry is None:
                continue
            if not store.exists(entry.location):
                cache.forget(key)  # the file was collected: render again
                continue
            _write_atomic(path, store.get(entry.location))
            receipt = Receipt((*request.charged_before[i : i + 1], *hit_receipt(entry.receipt, "", i).lines))
            hits[i] = _Outcome(path, spec, receipt, "hit")
        return hits

    def _render(
        self,
        request: _Request,
        indexes: list[int],
        cache: ResultCache | None,
        store: LocalArtifactStore | None,
        keys: list[str],
    ) -> Iterator[tuple[int, _Outcome]]:
        if not indexes:
            return
        from rendercost.execution.pipeline.runner import DiffusersRunner

        runner = DiffusersRunner(self.registry, self.settings)
        size = self.settings.max_batch_size
        chunks = [indexes[at : at + size] for at in range(0, len(indexes), size)]
        steps = get_preset(request.specs[indexes[0]].preset).steps
        with _progress(len(chunks) * steps, enabled=not self.quiet and sys.stdout.isatty()) as on_step:
            for number, chunk in enumerate(chunks):
                plan = BatchPlan(uuid.uuid4().hex, tuple(BatchItem("", i, request.specs[i]) for i in chunk))
                result = runner.run(plan, _offset(on_step, number * steps))
                device_lines = price_batch(
                    plan,
                    result,
                    catalog=self.catalog,
                    device_type=self.settings.device_type,
                    pricing_model=PricingModel(self.settings.pricing_model),
                    region=self.settings.region,
                )
                for image, lines in zip(result.images, device_lines, strict=True):
                    i = image.item.image_index
                    before = request.charged_before[i : i + 1]
                    receipt = Receipt((*before, *lines, self._storage_line(i, len(image.data))))
                    payload = receipt_payload(image.item.spec, receipt)
                    data = embed_receipt(image.data, image.media_type, payload)
                    _write_atomic(request.paths[i], data)
                    status = "bypass"
                    if cache is not None and store is not None:
                        ref = store.put(
                            data, media_type=image.media_type, suffix=image.item.spec.output_format.suffix
                        )
                        cache.put(keys[i], location=ref.key, media_type=image.media_type, receipt=payload)
                        status = "miss"
                    yield i, _Outcome(request.paths[i], image.item.spec, receipt, status)

    def _storage_line(self, image_index: int, size_bytes: int) -> CostLine:
        return price_storage(
            "",
            image_index,
            size_bytes,
            catalog=self.catalog,
            backend=STORAGE_BACKEND,
            region=self.settings.region,
            retention_days=self.settings.artifact_retention_days,
        )


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


@contextlib.contextmanager
def _progress(total: int, *, enabled: bool) -> Iterator[StepCallback | None]:
    """A progress bar over denoising steps on stderr, or None when it would not be seen."""
    if not enabled:
        yield None
        return
    columns = (TextColumn("denoising"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("denoise", total=total)
        yield lambda done, _total: progress.update(task, completed=done)


def _offset(on_step: StepCallback | None, before: int) -> StepCallback | None:
    """``on_step`` for one chunk, counting the steps of the chunks before it."""
    if on_step is None:
        return None
    return lambda done, total: on_step(before + done, total)


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
