"""What the doors and admission check about models before anything is queued (``ModelCatalog``).

The implementations that read model folders or ask the model registry live in
``execution.models.catalog``; admission and the doors see only this protocol.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol


class ModelCatalog(Protocol):
    """What a door checks about models before it queues a job, so a bad request is a 400 and never a
    failed job. Calls may block (they read model folders): the API runs them in a thread."""

    def names(self) -> Collection[str]:
        """Configured model names."""
        ...

    def preset_available(self, model: str, preset: str) -> bool:
        """False when ``preset`` needs a speed LoRA ``model`` does not have."""
        ...

    def lora_exists(self, model: str, name: str) -> bool: ...

    def check_prompt(self, model: str, prompt: str, *, param: str) -> None:
        """Raise ``PromptTooLong`` when ``prompt`` does not fit ``model``'s text encoders."""
        ...
