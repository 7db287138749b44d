"""A night of product-photo renders, generated from a seed: the workload ``bench/savings.py`` replays.

The mix, per 100 requests (the shape of a catalogue shoot's overnight queue: a designer explores many
drafts, sends some to review and approves a few finals; clients resubmit and teammates re-ask for the
same shot in their own words):

- **classes**: 60 drafts, 28 reviews, 12 finals (``X-Render-Class``);
- **sizes**: 50 square (64x64 on the tiny model), 30 landscape (96x64), 20 portrait (64x96);
- **new shots**: about 65: a product x a scene x a lighting (16 x 10 x 6 = 960 shots), a fresh seed;
- **exact repeats**: about 20: an earlier request again, byte for byte (a retry, a second reviewer);
- **paraphrases**: about 15: an earlier shot asked in other words, same seed, class and size.

A repeat or paraphrase refers to a request at least ``MIN_GAP`` positions earlier (it was asked for
after the first one had been seen), drawn with a preference for recent ones. Nothing here knows what
the server does with it: the mix is the night's, not tuned to any mechanism.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

PRODUCTS = (
    "white leather sneaker", "ceramic coffee mug", "steel wristwatch", "canvas backpack",
    "glass perfume bottle", "wooden desk lamp", "wool scarf", "leather wallet", "silver ring",
    "linen shirt", "copper kettle", "bamboo cutting board", "wireless headphone", "ceramic vase",
    "scented candle", "sunglasses",
)  # fmt: skip
SCENES = (
    "on a marble countertop", "on a sandy beach", "on a wooden table", "on a concrete floor",
    "in a sunlit kitchen", "on a velvet cloth", "in a city street", "on a mossy rock in a forest",
    "on a white seamless backdrop", "on a linen tablecloth",
)  # fmt: skip
LIGHTING = (
    "soft studio light", "golden hour light", "hard flash light", "overcast daylight",
    "warm candle light", "cool morning light",
)  # fmt: skip
CLASSES = (("draft", 60), ("review", 28), ("final", 12))
SIZES = (("64x64", 50), ("96x64", 30), ("64x96", 20))
REPEAT_SHARE = 0.20
PARAPHRASE_SHARE = 0.15
MIN_GAP = 12  # a repeat comes at least this many requests after what it repeats
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class Shot:
    """One product, scene and lighting."""

    product: str
    scene: str
    lighting: str

    def prompt(self, wording: int = 0) -> str:
        """The shot in one of three wordings (0 is how it is first asked)."""
        if wording == 1:
            return f"{self.product} {self.scene}, {self.lighting}, product photo"
        if wording == 2:
            return f"a photo of a {self.product} placed {self.scene} in {self.lighting}"
        return f"product photo of a {self.product} {self.scene}, {self.lighting}"


@dataclass(frozen=True)
class NightRequest:
    """One request of the night."""

    position: int
    kind: str  # new | repeat | paraphrase
    shot: Shot
    wording: int
    seed: int
    render_class: str
    size: str
    of: int | None = None  # the position it repeats or paraphrases

    @property
    def prompt(self) -> str:
        return self.shot.prompt(self.wording)


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    names, weights = zip(*table, strict=True)
    return str(rng.choices(names, weights=weights)[0])


def _earlier(rng: random.Random, requests: list[NightRequest]) -> NightRequest | None:
    eligible = requests[: len(requests) - MIN_GAP + 1] if len(requests) >= MIN_GAP else []
    if not eligible:
        return None
    index = len(eligible) - 1 - min(int(rng.expovariate(1 / 60)), len(eligible) - 1)  # recent ones likelier
    return eligible[index]


def night(requests: int, seed: int = 2026) -> list[NightRequest]:
    """``requests`` requests of the night, the same for the same seed."""
    rng = random.Random(seed)
    made: list[NightRequest] = []
    for position in range(requests):
        draw = rng.random()
        earlier = _earlier(rng, made)
        if earlier is not None and draw < REPEAT_SHARE:
            made.append(replace(earlier, position=position, kind="repeat", of=earlier.position))
            continue
        if earlier is not None and draw < REPEAT_SHARE + PARAPHRASE_SHARE:
            wording = rng.choice([w for w in (0, 1, 2) if w != earlier.wording])
            made.append(
                replace(earlier, position=position, kind="paraphrase", wording=wording, of=earlier.position)
            )
            continue
        shot = Shot(rng.choice(PRODUCTS), rng.choice(SCENES), rng.choice(LIGHTING))
        made.append(
            NightRequest(
                position=position,
                kind="new",
                shot=shot,
                wording=0,
                seed=rng.randint(0, MAX_SEED),
                render_class=_weighted(rng, CLASSES),
                size=_weighted(rng, SIZES),
            )
        )
    return made
