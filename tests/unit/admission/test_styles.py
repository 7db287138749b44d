"""The style set and ``apply_styles``: templates wrap the prompt, negatives add up, rewrite styles
are handed to the rewrite step, unknown names are dropped or refused."""

from __future__ import annotations

import pytest

from rendercost.admission.styles import PROMPT_SLOT, apply_styles, parse_styles, shipped_styles
from rendercost.errors import InvalidRequest
from rendercost.llm_gateway.builtin import REWRITE_STYLES


def test_the_shipped_set_has_the_common_names_and_valid_templates() -> None:
    book = shipped_styles()
    names = book.names()
    assert len(names) == len({name.casefold() for name in names})  # no two styles share a name
    assert {
        "Fooocus V2",
        "Fooocus Enhance",
        "Fooocus Sharp",
        "cinematic",
        "photographic",
        "product photo",
    } <= set(names)
    assert all(PROMPT_SLOT in style.prompt for style in book.styles)


def test_every_rewrite_style_is_one_the_rewrite_step_knows() -> None:
    rewrite = [style.name for style in shipped_styles().styles if style.rewrite]
    assert rewrite == ["Fooocus V2"]
    assert set(rewrite) <= REWRITE_STYLES


def test_styles_wrap_in_order_and_add_their_negatives() -> None:
    styled = apply_styles("a red fox", "people", ["photographic", "Fooocus Sharp", "Fooocus V2"])
    photographic = shipped_styles().find("photographic")
    sharp = shipped_styles().find("fooocus sharp")  # names match case-insensitively
    assert photographic is not None and sharp is not None
    inner = photographic.prompt.replace(PROMPT_SLOT, "a red fox")
    assert styled.prompt == sharp.prompt.replace(PROMPT_SLOT, inner)
    assert styled.negative_prompt == f"people, {photographic.negative}, {sharp.negative}"
    assert styled.applied == ("photographic", "Fooocus Sharp")
    assert styled.rewrite_styles == ("Fooocus V2",)


def test_unknown_styles_are_dropped_or_refused_when_strict() -> None:
    styled = apply_styles("a red fox", "", ["No Such Style"])
    assert (styled.prompt, styled.negative_prompt, styled.unknown) == ("a red fox", "", ("No Such Style",))
    with pytest.raises(InvalidRequest) as refused:
        apply_styles("a red fox", "", ["No Such Style"], strict=True, param="style_selections")
    assert refused.value.param == "style_selections"


def test_a_template_without_the_prompt_slot_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks"):
        parse_styles('[[style]]\nname = "broken"\nprompt = "no slot"\n')
