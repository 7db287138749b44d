"""Every tunable of rendercost, typed.

Sources, highest priority first: keyword arguments (the CLI's flags), ``RENDERCOST_*`` environment
variables (nested fields with ``__``, e.g. ``RENDERCOST_SPEED__COMPILE=true``), the same names in the
``.env`` file (``env_file``), files named after them in the secrets directory (``secrets_dir``, e.g.
``/run/secrets/rendercost_database_url``), the TOML file named by ``RENDERCOST_CONFIG`` (or ``--config``),
then the defaults below. ``config``, ``env_file`` and ``secrets_dir`` choose sources, so they are read from
the flags or the environment only.

A name no setting has stops start-up: an unknown ``RENDERCOST_*`` variable (environment, ``.env``,
secrets file) or TOML key raises ``UnknownSetting`` naming the closest real setting, so a misspelt
``RENDERCOST_DATABSE_URL`` never silently runs on the default. ``explain`` says where each effective
value came from (``rendercost config show``).
"""

from __future__ import annotations

import difflib
import os
import tomllib
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from rendercost.errors import RenderCostError

DEFAULT_MODEL_NAME = "default"  # the embedded tiny model, built on first use
ENV_PREFIX = "RENDERCOST_"
NESTED = "__"
DEFAULT_SECRETS_DIR = Path("/run/secrets")
DEFAULT_ENV_FILE = Path(".env")  # in the working directory
SECRET_SETTINGS = frozenset({"webhook_secret", "metrics_token"})  # shown masked by ``rendercost config show``
URL_SETTINGS = frozenset(
    {"database_url", "budget_alert_webhook_url", "redis_url"}
)  # their passwords are masked
MASK = "****"


class UnknownSetting(RenderCostError):
    """A ``RENDERCOST_*`` name or TOML key that no setting has."""

    code = "unknown_setting"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/rendercost``, else ``~/.local/share/rendercost``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rendercost"


class ModelConfig(BaseModel):
    """One model the server may load, by name."""

    source: str  # local diffusers folder, a single-file .safetensors checkpoint, or a hub id (offline cache)
    config: Path | None = (
        None  # single-file checkpoints: the diffusers config folder (None: SDXL base, shipped)
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"  # auto: bf16 on CUDA, fp32 on CPU
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    speed_loras: dict[str, str] = Field(default_factory=dict)  # preset name -> LoRA name (file stem)


class LlmProviderConfig(BaseModel):
    """One prompt-rewrite LLM provider of the chain (``llm_gateway`` builds the gateway from these)."""

    name: str  # unique, shown in results and errors
    kind: Literal["openai", "anthropic"]  # openai = any OpenAI-compatible API (vLLM, Ollama, ...)
    model: str  # LLM model; priced from the catalog's [llm."MODEL"]
    base_url: str | None = None  # None: the vendor's public API
    keys: dict[str, float] = Field(default_factory=dict)  # env var name -> weight, e.g. {"OPENAI_KEY_1": 2}
    timeout_s: float = 10.0  # per call
    max_attempts: int = 3  # calls per rewrite on this provider
    failure_threshold: int = 3  # consecutive failed rewrites that open the circuit
    cooldown_s: float = 30.0  # open circuit rest before a half-open probe


class SpeedSwitches(BaseModel):
    """Runner speed-ups; each can be turned off. Defaults are the likely-best configuration on CUDA
    (bench/gpu_throughput.py measures each switch); on CPU only the switches that help there apply."""

    sdpa: bool = True  # scaled-dot-product attention kernels
    channels_last: bool = True  # NHWC memory format for UNet and VAE (CUDA only)
    fuse_qkv: bool = True  # fused QKV projections in attention (CUDA only)
    compile: bool = False  # torch.compile the UNet (cold compile costs minutes; cache in data dir)
    compile_mode: Literal["default", "max-autotune", "max-autotune-no-cudagraphs"] = "default"  # inductor
    compile_cache_dir: Path | None = None  # None: data_dir/compile-cache; env TORCHINDUCTOR_CACHE_DIR wins
    int8: bool = False  # torchao int8 dynamic quantization of the UNet's large linear layers (CUDA)
    fp8: bool = False  # float8 linear layers where the device supports them (CUDA, sm_89+)
    vae_tiling: bool = True  # decode large images in tiles
    merge_loras: bool = True  # merge the active LoRAs into the UNet while they stay active (models/loras.py)
    int8_max_pixels: int = 2048 * 2048  # above this size int8 is off and the 16-bit path is used
    vae_tiling_min_pixels: int = 1536 * 1536  # tile the VAE at or above this size


RenderClassName = Literal["draft", "review", "final"]  # admission.routing.RENDER_CLASSES


class StorageClass(BaseModel):
    """How one request class's images are stored: kept ``retention_days`` (and priced for that long),
    written as ``output_format`` when the request names no format (None: the door's default, PNG)."""

    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(ge=1)
    output_format: Literal["png", "webp", "jpeg"] | None = None


def default_storage_classes() -> dict[RenderClassName, StorageClass]:
    """Drafts are looked at once: a day, as WebP. Reviews: a week, WebP. Finals: 30 days, PNG."""
    return {
        "draft": StorageClass(retention_days=1, output_format="webp"),
        "review": StorageClass(retention_days=7, output_format="webp"),
        "final": StorageClass(retention_days=30, output_format="png"),
    }


class Settings(BaseSettings):
    """Process-wide settings; build once at start and pass the parts each component needs."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter=NESTED, extra="forbid")

    config: Path | None = None  # TOML file read at start (RENDERCOST_CONFIG)
    env_file: Path | None = DEFAULT_ENV_FILE  # dotenv file read at start if it exists (RENDERCOST_ENV_FILE)
    secrets_dir: Path | None = DEFAULT_SECRETS_DIR  # one file per secret setting, if the folder exists
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"  # rendercost's loggers
    # torch CPU threads per process; 0 = torch's default (one per core). On 2 shared cores 1 was fastest.
    torch_threads: int = Field(default=1, ge=0)
    # how long a Python thread may keep the GIL while another waits (Python's default: 5 ms), set in
    # every process that runs a worker: the render loop lets go of the GIL for each tensor op and, beside
    # busy API threads, waited up to this long each time to get it back (render time +15-20% at 5 ms)
    gil_switch_interval_ms: float = Field(default=0.5, gt=0, le=100)
    data_dir: Path = Field(default_factory=default_data_dir)  # models, database, artifacts
    database_url: str | None = None  # None: sqlite file in data_dir
    artifacts_dir: Path | None = None  # None: data_dir/artifacts
    # shared by every process of a fleet: rate-limit counters and the text-embedding cache.
    # None: in-memory rate limits (per process) and the local embedding cache (data_dir/cache/embeddings)
    redis_url: str | None = None  # redis://[:password@]host:port[/db]
    redis_timeout_s: float = Field(default=0.25, gt=0)  # connect and per-command socket timeout
    # s3://bucket/prefix: images in an S3-compatible bucket (endpoint, region, credentials from the AWS
    # environment: AWS_ENDPOINT_URL_S3, AWS_REGION, AWS_ACCESS_KEY_ID, ...); None: the artifacts_dir folder
    artifacts_url: str | None = Field(default=None, pattern=r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?$")
    # > 0 (S3 only): image URLs are presigned GETs valid this long; 0: served through the API (key-checked)
    artifacts_presign_seconds: int = Field(default=0, ge=0, le=604800)  # SigV4 allows at most 7 days

    models: dict[str, ModelConfig] = Field(default_factory=dict)  # by name; "default" is the tiny model
    default_model: str = DEFAULT_MODEL_NAME
    lora_dirs: list[Path] = Field(
        default_factory=list
    )  # searched in order, then models_dir/loras, data_dir/loras
    # models root: every models_dir/checkpoints/NAME.safetensors is model NAME; None: data_dir/models
    models_dir: Path | None = None
    device: str = "auto"  # torch device for models without their own
    warm_loras: int = 8  # LoRA adapters kept loaded per pipeline (least recently used is dropped)

    catalog_path: Path | None = None  # price catalog TOML; None: the one shipped with rendercost
    device_type: str = "cpu"  # catalog device this worker runs as
    pricing_model: Literal["on_demand", "spot", "reserved"] = "on_demand"
    region: str = "us-east-1"
    # storage lifecycle: images are kept (and priced, GB-months) for the days their request class gets,
    # or what the request asks (retention_days) up to the cap; a sweeper deletes them once expired
    artifact_retention_days: int = Field(default=30, ge=1)  # requests without a class
    artifact_classes: dict[RenderClassName, StorageClass] = Field(default_factory=default_storage_classes)
    artifact_max_retention_days: int = Field(default=365, ge=1)  # longer asks get 400 retention_too_long
    artifact_sweep_interval_s: float = Field(default=3600.0, ge=0)  # serve/worker sweep this often; 0 = off
    artifact_lifecycle_grace_days: int = Field(default=1, ge=0)  # S3 rules expire this long after the sweeper
    result_cache_ttl_seconds: float = 86400.0  # exact-result cache entries live this long (24 h); 0 = off
    embedding_cache_ttl_seconds: float = 30 * 86400.0  # text-embedding cache entries live this long; 0 = off
    embedding_cache_max_entries: int = 1024  # text-embedding rows kept in memory (the files keep the rest)
    llm_providers: list[LlmProviderConfig] = []  # prompt-rewrite fallback chain, in order; [] = builtin only
    rewrite_cache_threshold: float = 0.94  # semantic rewrite cache: cosine similarity needed for a hit
    rewrite_cache_ttl_seconds: float = 7 * 86400.0  # semantic rewrite cache entries live this long; 0 = off

    min_side: int = 256  # smallest width/height accepted for non-SDXL sizes
    max_side: int = 2048  # largest width/height accepted
    max_n: int = 8  # images per request
    max_prompt_tokens: int = 77  # CLIP context; longer prompts are refused unless truncation is asked
    max_steps: int = Field(default=100, ge=1)  # largest per-request ``steps`` override
    max_guidance_scale: float = Field(default=30.0, ge=0)  # largest per-request ``guidance_scale`` override

    max_batch_size: int = 4  # images per pipeline call
    max_wait_ms: int = 100  # how long the planner waits to fill a batch
    aging_seconds: float = 30.0  # batch-priority work waiting this long is planned as interactive

    lease_seconds: float = 60.0  # a claim expires unless heartbeated
    # `rendercost worker`: on SIGTERM, how long to finish the jobs held before releasing them (the
    # device time spent on them is booked as interrupted); match the pod's terminationGracePeriodSeconds
    worker_drain_seconds: float = Field(default=25.0, ge=0)
    worker_metrics_bind: str | None = Field(default=None, pattern=r"^.+:[0-9]{1,5}$")  # HOST:PORT; None: off
    max_attempts: int = 3  # dead-letter after this many failed attempts
    retry_backoff_seconds: float = 2.0  # base of the exponential backoff between attempts

    speed: SpeedSwitches = Field(default_factory=SpeedSwitches)

    host: str = "127.0.0.1"
    port: int = 8000
    metrics_token: str | None = None  # set: the API's /metrics needs "Authorization: Bearer <token>"
    metrics_bind: str | None = Field(
        default=None, pattern=r"^.+:[0-9]{1,5}$"
    )  # HOST:PORT: /metrics there only

    # HTTP API (api/): admission limits, waiting, rate limits and webhooks.
    max_queue_depth: int = 1000  # queued jobs at which new submissions get 503 queue_full
    queue_full_retry_after_s: float = 5.0  # Retry-After sent with queue_full
    max_body_bytes: int = 1_048_576  # larger request bodies get 413
    default_size: str = "1024x1024"  # what size "auto" (or no size) renders at
    images_wait_timeout_s: float = 300.0  # /v1/images/generations waits this long, then 504
    job_poll_interval_s: float = 0.05  # first poll delay while a request waits for its job (doubles, max 0.5)
    rate_limit_key_requests_per_minute: int = 600  # per API key; 0 turns the limit off
    rate_limit_tenant_requests_per_minute: int = 1200  # per tenant (all its keys); 0 = off
    rate_limit_key_images_per_minute: int = 120  # images requested per API key; 0 = off
    rate_limit_tenant_images_per_minute: int = 240  # images requested per tenant; 0 = off
    rate_limit_fail_open: bool = True  # Redis unreachable: admit (warning logged) or refuse with 503
    budget_alert_webhook_url: str | None = None  # budget alerts are POSTed here (signed like job webhooks)
    webhook_secret: str | None = None  # HMAC key for webhooks of keys without their own; None: the database's
    webhook_max_attempts: int = 12  # POSTs tried per job before it is failed (30 s doubling to 1 h: ~5 h)
    webhook_timeout_s: float = 10.0  # per delivery attempt
    webhook_allowed_hosts: list[str] = []  # hosts/IPs/CIDRs webhooks may reach beyond public addresses
    webhook_backoff_base_s: float = 30.0  # wait after the first failed POST; doubles after each one
    webhook_backoff_cap_s: float = 3600.0  # longest wait between two POSTs
    webhook_max_age_s: float = 86400.0  # no retry starts later than this after the first POST
    webhook_lease_s: float = 60.0  # a claimed delivery another server may take once this runs out
    fooocus_strict: bool = False  # Fooocus-API door: unknown styles/models/LoRAs are 422, never substituted

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return tuple(source for _, source in setting_sources(settings_cls, init_settings))

    @model_validator(mode="after")
    def _resolve_compile_cache_dir(self) -> Settings:
        if self.speed.compile_cache_dir is None:
            self.speed.compile_cache_dir = self.data_dir / "compile-cache"
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'rendercost.db'}"

    @property
    def resolved_artifacts_dir(self) -> Path:
        return self.artifacts_dir or self.data_dir / "artifacts"

    @property
    def resolved_lora_dirs(self) -> list[Path]:
        return [*self.lora_dirs, self.resolved_models_dir / "loras", self.data_dir / "loras"]

    @property
    def resolved_models_dir(self) -> Path:
        """The models root: ``checkpoints/`` (single-file models) and ``loras/``."""
        return self.models_dir or self.data_dir / "models"

    @property
    def artifact_class_days(self) -> dict[str, int]:
        """Retention days per request class (``artifact_classes``)."""
        return {name: rule.retention_days for name, rule in self.artifact_classes.items()}

    @property
    def tiny_model_dir(self) -> Path:
        """Where the embedded default model is built on first use."""
        return self.data_dir / "models" / "tiny-sdxl"


def setting_sources(
    settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource
) -> list[tuple[str, PydanticBaseSettingsSource]]:
    """(origin, source), highest priority first, after refusing names no setting has."""
    toml_path = _config_path(init_settings)
    env_file = _chosen_path(init_settings, "env_file", DEFAULT_ENV_FILE)
    secrets_dir = _chosen_path(init_settings, "secrets_dir", DEFAULT_SECRETS_DIR)
    check_names(os.environ, origin="environment")
    sources: list[tuple[str, PydanticBaseSettingsSource]] = [
        ("flag", init_settings),
        ("env", EnvSettingsSource(settings_cls)),
    ]
    if env_file is not None and env_file.is_file():
        check_names({k: v or "" for k, v in dotenv_values(env_file).items()}, origin=str(env_file))
        dotenv = DotEnvSettingsSource(settings_cls, env_file=env_file, dotenv_filtering="match_prefix")
        sources.append((".env", dotenv))
    if secrets_dir is not None and secrets_dir.is_dir():
        check_names({p.name: "" for p in secrets_dir.iterdir() if p.is_file()}, origin=str(secrets_dir))
        sources.append(("secrets", SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir)))
    if toml_path is not None:
        check_toml_keys(tomllib.loads(toml_path.read_text()), origin=str(toml_path))
        sources.append(("toml", TomlConfigSettingsSource(settings_cls, toml_file=toml_path)))
    return sources


def _config_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = init_settings().get("config")
    path = explicit or os.environ.get("RENDERCOST_CONFIG")
    if not path:
        return None
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"config file {resolved} does not exist")
    return resolved


def _chosen_path(init_settings: PydanticBaseSettingsSource, name: str, default: Path) -> Path | None:
    """A source-choosing setting: flag, else environment, else ``default``; "" turns the source off."""
    values = init_settings()
    if name in values:
        return None if values[name] in (None, "") else Path(values[name])
    raw = os.environ.get(f"{ENV_PREFIX}{name.upper()}")
    if raw is None:
        return default
    return Path(raw) if raw else None


# -- names no setting has -----------------------------------------------------------------------------


def check_names(variables: Mapping[str, str], *, origin: str) -> None:
    """Raise ``UnknownSetting`` for the first ``RENDERCOST_*`` name in ``variables`` no setting has."""
    for name in sorted(variables):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split(NESTED)
        closest = _closest(parts)
        if closest is not None:
            hint = ENV_PREFIX + NESTED.join(closest).upper() if closest else None
            raise UnknownSetting(_unknown_message(name, origin, hint))


def check_toml_keys(table: Mapping[str, Any], *, origin: str) -> None:
    """Raise ``UnknownSetting`` for the first key of a TOML settings file no setting has."""
    for path in _toml_paths(table):
        closest = _closest(path)
        if closest is not None:
            hint = ".".join(closest).replace(".[].", "[].") if closest else None
            raise UnknownSetting(_unknown_message(".".join(path).replace(".[].", "[]."), origin, hint))


def _closest(parts: list[str]) -> list[str] | None:
    """None when every part names a field; else ``parts`` up to the unknown one with that one replaced
    by the closest field name ([] when none is close)."""
    problem = _unknown_part(Settings, parts)
    if problem is None:
        return None
    depth, choices = problem
    close = difflib.get_close_matches(parts[depth], choices, n=1, cutoff=0.6)
    return [*parts[:depth], close[0]] if close else []


def _unknown_message(name: str, origin: str, closest: str | None) -> str:
    hint = f"did you mean {closest}?" if closest else "rendercost config show lists every setting"
    return f"unknown setting {name} (in {origin}); {hint}"


def _toml_paths(table: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[list[str]]:
    for key, value in table.items():
        path = (*prefix, key)
        yield list(path)
        if isinstance(value, Mapping):
            yield from _toml_paths(value, path)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, Mapping):
                    yield from _toml_paths(item, (*path, "[]"))


def _unknown_part(model: type[BaseModel], parts: list[str]) -> tuple[int, list[str]] | None:
    """(index of the first part no field has, the field names allowed there), or None when all are known."""
    annotation: Any = model
    for depth, part in enumerate(parts):
        if part == "[]":  # an item of a list of tables: descend into the item type
            annotation = _list_item(annotation)
            continue
        target = _model_class(annotation)
        if target is not None:
            if part not in target.model_fields:
                return depth, sorted(target.model_fields)
            annotation = target.model_fields[part].annotation
        elif _is_dict(annotation):
            annotation = get_args(_unwrap_optional(annotation))[1]  # a free key (a model's name)
        else:
            return None  # a leaf given a sub-key: the value check reports it
    return None


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _model_class(annotation: Any) -> type[BaseModel] | None:
    inner = _unwrap_optional(annotation)
    return inner if isinstance(inner, type) and issubclass(inner, BaseModel) else None


def _is_dict(annotation: Any) -> bool:
    return get_origin(_unwrap_optional(annotation)) is dict


def _list_item(annotation: Any) -> Any:
    inner = _unwrap_optional(annotation)
    return get_args(inner)[0] if get_origin(inner) is list else inner
