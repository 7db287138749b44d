"""Where each effective setting came from (``rendercost config show``), secrets masked.

``explain(**init)`` builds ``Settings(**init)`` and, reading every source the settings read, lowest
priority first, names the source of each leaf: ``default``, ``toml``, ``secrets``, ``.env``, ``env`` or
``flag``. Values named in ``SECRET_SETTINGS``, anything read from the secrets folder, and the password of
a URL setting are shown as ``****``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel
from pydantic_settings import InitSettingsSource

from rendercost.settings import (
    ENV_PREFIX,
    MASK,
    NESTED,
    SECRET_SETTINGS,
    URL_SETTINGS,
    Settings,
    setting_sources,
)


@dataclass(frozen=True)
class EffectiveSetting:
    """One leaf setting as the process sees it (``rendercost config show``)."""

    name: str  # dotted path, e.g. "speed.compile" or "models.default.source"
    value: Any  # JSON-compatible; secrets masked
    origin: str  # "default", "toml", "secrets", ".env", "env" or "flag"

    @property
    def env_name(self) -> str:
        """The environment variable that sets it, e.g. ``RENDERCOST_SPEED__COMPILE``."""
        return ENV_PREFIX + self.name.replace(".", NESTED).upper()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "env": self.env_name, "value": self.value, "origin": self.origin}


def explain(**init: Any) -> list[EffectiveSetting]:
    """``Settings(**init)`` leaf by leaf, each with the source it came from, secrets masked."""
    settings = Settings(**init)
    origins: dict[tuple[str, ...], str] = {}
    for origin, source in reversed(setting_sources(Settings, InitSettingsSource(Settings, init_kwargs=init))):
        for path, _ in _leaves(source()):  # lowest priority first, so a higher source overwrites
            origins[path] = origin
    rows = []
    for path, value in _leaves(settings.model_dump(mode="json")):
        origin = _origin_of(path, origins)
        rows.append(EffectiveSetting(".".join(path), _masked(path, value, origin), origin))
    return rows


def _leaves(values: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    if isinstance(values, BaseModel):
        values = values.model_dump(mode="json")
    if isinstance(values, Mapping) and values:
        for key, value in values.items():
            yield from _leaves(value, (*prefix, str(key)))
    else:
        yield prefix, values


def _origin_of(path: tuple[str, ...], origins: Mapping[tuple[str, ...], str]) -> str:
    for depth in range(len(path), 0, -1):  # the leaf, else the nearest table a source set whole
        if path[:depth] in origins:
            return origins[path[:depth]]
    return "default"


def _masked(path: tuple[str, ...], value: Any, origin: str) -> Any:
    if value is None or value == "":
        return value
    if path[0] in SECRET_SETTINGS or origin == "secrets":
        return MASK
    if path[0] in URL_SETTINGS and isinstance(value, str):
        parts = urlsplit(value)
        if parts.password:
            netloc = f"{parts.username}:{MASK}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
    return value
