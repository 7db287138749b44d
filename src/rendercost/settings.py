"""Every tunable of rendercost, typed.

Sources, highest priority first: keyword arguments (the CLI's flags), ``RENDERCOST_*`` environment
variables (nested fields with ``__``, e.g. ``RENDERCOST_SPEED__COMPILE=true``), the TOML file named by
``RENDERCOST_CONFIG`` (or ``--config``), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_MODEL_NAME = "default"  # the embedded tiny model, built on first use


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/rendercost``, else ``~/.local/share/rendercost``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rendercost"


class ModelConfig(BaseModel):
    """One model the server may load, by name."""

    source: str  # local diffusers folder, or a hub id loaded offline from the HF cache
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
    int8_max_pixels: int = 2048 * 2048  # above this size int8 is off and the 16-bit path is used
    vae_tiling_min_pixels: int = 1536 * 1536  # tile the VAE at or above this size


class Settings(BaseSettings):
    """Process-wide settings; build once at start and pass the parts each component needs."""

    model_config = SettingsConfigDict(env_prefix="RENDERCOST_", env_nested_delimiter="__", extra="forbid")

    config: Path | None = None  # TOML file read at start (RENDERCOST_CONFIG)
    data_dir: Path = Field(default_factory=default_data_dir)  # models, database, artifacts
    database_url: str | None = None  # None: sqlite file in data_dir
    artifacts_dir: Path | None = None  # None: data_dir/artifacts

    models: dict[str, ModelConfig] = Field(default_factory=dict)  # by name; "default" is the tiny model
    default_model: str = DEFAULT_MODEL_NAME
    lora_dirs: list[Path] = Field(default_factory=list)  # searched in order; data_dir/loras is always last
    device: str = "auto"  # torch device for models without their own
    warm_loras: int = 8  # LoRA adapters kept loaded per pipeline (least recently used is dropped)

    catalog_path: Path | None = None  # price catalog TOML; None: the one shipped with rendercost
    device_type: str = "cpu"  # catalog device this worker runs as
    pricing_model: Literal["on_demand", "spot", "reserved"] = "on_demand"
    region: str = "us-east-1"
    artifact_retention_days: int = 30  # stored images are priced (GB-months) for this many days
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

    max_batch_size: int = 4  # images per pipeline call
    max_wait_ms: int = 100  # how long the planner waits to fill a batch
    aging_seconds: float = 30.0  # batch-priority work waiting this long is planned as interactive

    lease_seconds: float = 60.0  # a claim expires unless heartbeated
    max_attempts: int = 3  # dead-letter after this many failed attempts
    retry_backoff_seconds: float = 2.0  # base of the exponential backoff between attempts

    speed: SpeedSwitches = Field(default_factory=SpeedSwitches)

    host: str = "127.0.0.1"
    port: int = 8000

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
    budget_alert_webhook_url: str | None = None  # budget alerts are POSTed here (signed like job webhooks)
    webhook_secret: str | None = None  # HMAC key for webhooks of keys without their own; None: generated
    webhook_max_attempts: int = 5  # deliveries tried per job before giving up
    webhook_timeout_s: float = 10.0  # per delivery attempt
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
        toml_path = _config_path(init_settings)
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

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
        return [*self.lora_dirs, self.data_dir / "loras"]

    @property
    def tiny_model_dir(self) -> Path:
        """Where the embedded default model is built on first use."""
        return self.data_dir / "models" / "tiny-sdxl"


def _config_path(init_settings: PydanticBaseSettingsSource) -> Path | None:
    explicit = init_settings().get("config")
    path = explicit or os.environ.get("RENDERCOST_CONFIG")
    if not path:
        return None
    resolved = Path(path)
    if not resolved.is_file():
        raise FileNotFoundError(f"config file {resolved} does not exist")
    return resolved
