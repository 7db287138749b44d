"""Styles: named prompt and negative templates, applied by a door before it admits a request.

The set ships as ``rendercost/data/styles.toml`` (rendercost's own templates). ``style_step`` is
admission's step 0: every door (jobs, images, Fooocus-API, CLI) puts the names asked in
``RenderRequest.styles`` and admission applies them, recording ``styles_applied``. ``apply_styles(prompt,
negative, names)`` is the one function that does it: each named style wraps the prompt in turn
(``"{prompt}"`` stands for the text so far) and adds its negative words; a style marked ``rewrite``
(``Fooocus V2``) wraps nothing and is returned in ``rewrite_styles`` for the request's ``styles``, where
the rewrite step (``llm_gateway.builtin.REWRITE_STYLES``) expands the prompt. Names match
case-insensitively; an unknown name is dropped and reported (``unknown``), or refused with
``strict=True`` (``InvalidRequest`` naming ``param``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources

from rendercost.admission.catalog import ModelCatalog
from rendercost.domain.specs import RenderRequest
from rendercost.errors import InvalidRequest
from rendercost.llm_gateway.builtin import REWRITE_STYLES, STYLES

SHIPPED_STYLES = "styles.toml"  # file name inside the rendercost.data package folder
PROMPT_SLOT = "{prompt}"


@dataclass(frozen=True)
class Style:
    """One style of the set."""

    name: str  # as listed (GET /v1/engines/styles)
    prompt: str = PROMPT_SLOT  # template; PROMPT_SLOT is replaced by the prompt
    negative: str = ""  # words added to the negative prompt
    rewrite: bool = False  # asks the rewrite step to expand the prompt instead of wrapping it


@dataclass(frozen=True)
class StyledPrompt:
    """What ``apply_styles`` made of a prompt."""

    prompt: str  # the prompt with every template applied, in the order asked
    negative_prompt: str  # the client's negative prompt, then each style's negative words
    applied: tuple[str, ...]  # canonical names of the templates applied
    rewrite_styles: tuple[str, ...]  # canonical names of the styles that ask for a rewrite
    unknown: tuple[str, ...]  # names asked that are not in the set (dropped)


@dataclass(frozen=True)
class StyleBook:
    """The style set, by case-folded name; loaded once (``shipped_styles``)."""

    styles: tuple[Style, ...]

    def names(self) -> list[str]:
        return [style.name for style in self.styles]

    def find(self, name: str) -> Style | None:
        wanted = name.strip().casefold()
        return next((style for style in self.styles if style.name.casefold() == wanted), None)


def parse_styles(text: str) -> StyleBook:
    """A style book from TOML text (``[[style]]`` tables); ``ValueError`` on a malformed entry."""
    tables = tomllib.loads(text).get("style", [])
    styles = []
    for table in tables:
        style = Style(
            name=str(table["name"]),
            prompt=str(table.get("prompt", PROMPT_SLOT)),
            negative=str(table.get("negative", "")),
            rewrite=bool(table.get("rewrite", False)),
        )
        if PROMPT_SLOT not in style.prompt:
            raise ValueError(f"style {style.name!r}: its prompt template lacks {PROMPT_SLOT}")
        styles.append(style)
    return StyleBook(tuple(styles))


@cache
def shipped_styles() -> StyleBook:
    """The set shipped with rendercost (read once per process)."""
    return parse_styles(resources.files("rendercost.data").joinpath(SHIPPED_STYLES).read_text("utf-8"))


def _joined(*parts: str) -> str:
    return ", ".join(part.strip() for part in parts if part.strip())


def apply_styles(
    prompt: str,
    negative_prompt: str,
    names: tuple[str, ...] | list[str],
    *,
    strict: bool = False,
    param: str = "styles",
    book: StyleBook | None = None,
) -> StyledPrompt:
    """``prompt`` and ``negative_prompt`` with the named styles applied (see the module docstring)."""
    book = book or shipped_styles()
    applied: list[str] = []
    rewrite: list[str] = []
    unknown: list[str] = []
    negatives = [negative_prompt]
    for name in names:
        style = book.find(name)
        if style is None:
            if strict:
                message = f"unknown style {name!r}; GET /v1/engines/styles lists them"
                raise InvalidRequest(message, param=param)
            unknown.append(name)
        elif style.rewrite:
            rewrite.append(style.name)
        elif style.name not in applied:
            prompt = style.prompt.replace(PROMPT_SLOT, prompt.strip())
            negatives.append(style.negative)
            applied.append(style.name)
    return StyledPrompt(
        prompt=prompt.strip(),
        negative_prompt=_joined(*negatives),
        applied=tuple(applied),
        rewrite_styles=tuple(dict.fromkeys(rewrite)),
        unknown=tuple(unknown),
    )


def check_style_names(names: tuple[str, ...] | list[str], *, param: str = "styles") -> None:
    """Refuse (``InvalidRequest`` naming ``param``) a name that is neither in the style set nor a word
    the builtin rewriter knows (``llm_gateway.builtin.STYLES``, ``REWRITE_STYLES``)."""
    book = shipped_styles()
    for i, name in enumerate(names):
        if book.find(name) is None and name.lower() not in STYLES and name not in REWRITE_STYLES:
            message = f"unknown style {name!r}; GET /v1/styles lists them"
            raise InvalidRequest(message, param=f"{param}.{i}" if len(names) > 1 else param)


def style_step(catalog: ModelCatalog, request: RenderRequest) -> RenderRequest:
    """Admission's step 0 (pure but for the token check): ``request`` with the style set's templates for
    its ``styles`` applied to the prompt and negative prompt, their names in ``styles_applied``; names
    the set does not have are left for the rewrite step (``RenderRequest.rewrite_styles``). A styled
    prompt that no longer fits the model is ``PromptTooLong`` naming ``styles``. Applying twice changes
    nothing: applied names are skipped."""
    todo = request.rewrite_styles
    if not todo:
        return request
    spec = request.spec
    styled = apply_styles(spec.prompt, spec.negative_prompt, todo)
    if not styled.applied:
        return request
    catalog.check_prompt(spec.model, styled.prompt, param="styles")
    if styled.negative_prompt:
        catalog.check_prompt(spec.model, styled.negative_prompt, param="styles")
    styled_spec = replace(spec, prompt=styled.prompt, negative_prompt=styled.negative_prompt)
    return replace(request, spec=styled_spec, styles_applied=(*request.styles_applied, *styled.applied))
