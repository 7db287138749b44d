"""The offline rewriter: the prompt plus lighting, framing, camera and composition fragments.

Deterministic: the same prompt, styles and seed always give the same rewrite (a ``random.Random``
seeded from them picks the fragments). Styles add their own fragments; an unknown style name is kept
as a plain word. The word lists below are rendercost's own.
"""

from __future__ import annotations

import hashlib
import random

from rendercost.llm_gateway.types import Completion, RewriteRequest

LIGHTING = (
    "soft window light",
    "warm late-afternoon sun",
    "overcast diffuse daylight",
    "rim light against a dark background",
    "gentle studio softbox light",
    "cool blue-hour ambient light",
    "dappled light through leaves",
)
FRAMING = (
    "medium shot",
    "close-up with shallow depth of field",
    "wide establishing shot",
    "three-quarter view",
    "eye-level framing",
    "low angle looking up",
)
CAMERA = (
    "35mm lens",
    "50mm prime lens at f/2",
    "85mm portrait lens",
    "24mm wide lens",
    "medium-format camera",
    "macro lens",
)
COMPOSITION = (
    "rule of thirds",
    "centered symmetrical composition",
    "leading lines toward the subject",
    "clean negative space",
    "layered foreground and background",
    "balanced color palette",
)
STYLES: dict[str, tuple[str, ...]] = {
    "photo": ("photograph", "natural skin and material textures", "fine detail"),
    "cinematic": ("film still", "anamorphic feel", "graded teal and amber tones"),
    "product": ("commercial product shot", "seamless backdrop", "crisp reflections"),
    "illustration": ("digital illustration", "clean line work", "flat shading"),
    "watercolor": ("watercolor painting", "soft pigment bleeding", "paper texture"),
    "anime": ("anime key visual", "cel shading", "vivid outlines"),
    "isometric": ("isometric view", "miniature diorama", "tidy geometry"),
    "noir": ("black and white", "hard shadows", "moody contrast"),
}
# style names that ask for a rewrite themselves ("Fooocus V2": Fooocus' prompt expansion)
REWRITE_STYLES = frozenset({"rewrite", "expand", "Fooocus V2"})


def builtin_rewrite(request: RewriteRequest) -> Completion:
    """The offline rewrite of ``request`` (token counts 0: nothing is billed)."""
    digest = hashlib.sha256(f"{request.seed}\x00{request.prompt}\x00{request.styles}".encode()).digest()
    rng = random.Random(digest)  # noqa: S311  deterministic wording, not security
    parts = [request.prompt.strip().rstrip(",.")]
    for name in request.styles:
        if name in REWRITE_STYLES:
            continue
        parts.extend(STYLES.get(name.lower(), (name,)))
    parts += [rng.choice(LIGHTING), rng.choice(FRAMING), rng.choice(CAMERA), rng.choice(COMPOSITION)]
    return Completion(text=", ".join(parts), input_tokens=0, output_tokens=0)
