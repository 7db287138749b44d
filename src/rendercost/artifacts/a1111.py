"""AUTOMATIC1111's ``parameters`` text: the settings line image browsers, Civitai and "PNG Info" read.

Written into PNGs beside the ``rendercost`` receipt (``artifacts.metadata``), from the same payload
(``ledger.receipts.receipt_payload``). The format, as A1111 writes it::

    a red fox in snow <lora:film-grain:0.8>
    Negative prompt: blurry
    Steps: 30, Sampler: DPM++ 2M SDE Karras, CFG scale: 4.0, Seed: 1234, Size: 1024x1024, Model: default

LoRAs are ``<lora:name:weight>`` tags at the end of the prompt; a value holding a comma or a quote is
written as a JSON string. ``Model hash`` is written when the payload carries one: A1111's short hash,
the first 10 hex digits of the weights' SHA-256 (a single-file checkpoint's file hash is exactly what
A1111 and Civitai compute; a diffusers folder's is rendercost's hash over its files). Steps, sampler
and CFG are what ran: the preset's, or the request's overrides. ``parse_parameters`` reads such a text back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KEYWORD = "parameters"  # PNG text keyword A1111 uses
VERSION = "rendercost"

SAMPLER_NAMES = {  # rendercost sampler (domain.presets.Sampler) -> A1111's sampler name
    "dpmpp_2m_sde_karras": "DPM++ 2M SDE Karras",
    "dpmpp_sde_karras": "DPM++ SDE Karras",
    "euler_trailing": "Euler",
    "lcm": "LCM",
    "dpmpp_2m": "DPM++ 2M",
    "euler_a": "Euler a",
    "euler": "Euler",
    "ddim": "DDIM",
}
_NEGATIVE = "Negative prompt: "
_LORA_TAG = re.compile(r"\s*<lora:([^:<>]+):([-+0-9.eE]+)>\s*$")
_FIELD = re.compile(r'\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)')
_REQUIRED = ("prompt", "seed", "steps", "size")


@dataclass(frozen=True)
class A1111Parameters:
    """The settings one ``parameters`` text states."""

    prompt: str  # without the LoRA tags
    negative_prompt: str
    steps: int
    sampler: str  # A1111's name, e.g. "DPM++ 2M SDE Karras"
    cfg_scale: float
    seed: int
    width: int
    height: int
    model: str = ""
    model_hash: str | None = None
    loras: tuple[tuple[str, float], ...] = ()  # (name, weight)


def from_payload(payload: Mapping[str, Any]) -> A1111Parameters | None:
    """The parameters of a receipt payload; None when it lacks the render's settings."""
    if any(key not in payload for key in _REQUIRED):
        return None
    width, _x, height = str(payload["size"]).partition("x")
    loras = tuple((str(lora["name"]), float(lora["weight"])) for lora in payload.get("loras") or ())
    sampler = str(payload.get("sampler", ""))
    hash_ = payload.get("model_hash")
    return A1111Parameters(
        prompt=str(payload["prompt"]),
        negative_prompt=str(payload.get("negative_prompt", "")),
        steps=int(payload["steps"]),
        sampler=SAMPLER_NAMES.get(sampler, sampler),
        cfg_scale=float(payload.get("guidance_scale", 1.0)),
        seed=int(payload["seed"]),
        width=int(width),
        height=int(height),
        model=str(payload.get("model", "")),
        model_hash=None if hash_ is None else str(hash_)[:10],
        loras=loras,
    )


def _value(value: object) -> str:
    text = str(value)
    return json.dumps(text) if any(char in text for char in ',"\n') else text


def format_parameters(params: A1111Parameters) -> str:
    """The text A1111 would write for these settings."""
    tags = "".join(f" <lora:{name}:{weight:g}>" for name, weight in params.loras)
    lines = [params.prompt + tags]
    if params.negative_prompt:
        lines.append(_NEGATIVE + params.negative_prompt)
    fields: dict[str, object] = {
        "Steps": params.steps,
        "Sampler": params.sampler,
        "CFG scale": params.cfg_scale,
        "Seed": params.seed,
        "Size": f"{params.width}x{params.height}",
    }
    if params.model_hash:
        fields["Model hash"] = params.model_hash
    if params.model:
        fields["Model"] = params.model
    fields["Version"] = VERSION
    lines.append(", ".join(f"{key}: {_value(value)}" for key, value in fields.items()))
    return "\n".join(lines)


def parameters_text(payload: Mapping[str, Any]) -> str | None:
    """``format_parameters`` of a receipt payload, or None when it lacks the settings."""
    params = from_payload(payload)
    return format_parameters(params) if params is not None else None


def _fields(line: str) -> dict[str, str]:
    found = {}
    for match in _FIELD.finditer(line):
        key, value = match.group(1).strip(), match.group(2).strip()
        found[key] = json.loads(value) if value.startswith('"') else value
    return found


def _split_loras(prompt: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    loras: list[tuple[str, float]] = []
    while match := _LORA_TAG.search(prompt):
        loras.insert(0, (match.group(1), float(match.group(2))))
        prompt = prompt[: match.start()]
    return prompt, tuple(loras)


def parse_parameters(text: str) -> A1111Parameters:
    """The settings of a ``parameters`` text; ``ValueError`` when it has no settings line."""
    *head, last = text.strip("\n").split("\n")
    fields = _fields(last)
    if "Steps" not in fields or "Seed" not in fields:
        raise ValueError("not an A1111 parameters text: its last line has no Steps and Seed")
    body = "\n".join(head)
    prompt, _sep, negative = body.partition("\n" + _NEGATIVE)
    if body.startswith(_NEGATIVE):
        prompt, negative = "", body[len(_NEGATIVE) :]
    prompt, loras = _split_loras(prompt)
    width, _x, height = fields.get("Size", "0x0").partition("x")
    return A1111Parameters(
        prompt=prompt,
        negative_prompt=negative,
        steps=int(fields["Steps"]),
        sampler=fields.get("Sampler", ""),
        cfg_scale=float(fields.get("CFG scale", "1")),
        seed=int(fields["Seed"]),
        width=int(width),
        height=int(height),
        model=fields.get("Model", ""),
        model_hash=fields.get("Model hash"),
        loras=loras,
    )
