"""The semantic cache's guard against false hits: two prompts may share a rewrite only when the words
that change the picture but barely move a sentence embedding are the same in both.

``guard_signature(prompt)`` extracts colours, numbers (digits and number words; a plural noun counts
as "many"), negations, nouns (a small product/scene lexicon; plurals folded) and qualifiers (lighting,
time of day and materials: "golden hour" and "cool morning light" are 0.95 apart in MiniLM and are not
the same photo) into one canonical string. The cache requires exact equality of signatures on top of
the cosine threshold.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


COLOURS = _words(
    "red orange yellow green blue purple violet pink brown black white grey gray silver gold beige navy "
    "teal turquoise cyan magenta maroon cream ivory khaki olive tan crimson scarlet lavender"
)
NUMBER_WORDS = {
    "one": 1, "single": 1, "a": 1, "an": 1, "two": 2, "pair": 2, "couple": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "dozen": 12,
}  # fmt: skip
NEGATIONS = _words("no not without never none nothing neither nor cannot isn't aren't don't doesn't")
NOUNS = _words(
    # products
    "sneaker shoe boot sandal heel bag backpack handbag wallet watch ring necklace earring bracelet "
    "sunglasses glasses hat cap shirt tshirt jacket coat dress skirt jeans pants sock scarf glove "
    "bottle can cup mug glass plate bowl chair table sofa lamp bed desk shelf vase candle "
    "phone laptop tablet camera headphone speaker keyboard car bike bicycle motorcycle truck "
    "perfume lipstick cream soap toy ball book pen "
    # scenes and subjects
    "beach sea ocean lake river mountain forest desert city street road park garden field snow "
    "room kitchen studio office sky sunset sunrise night rain "
    "cat dog horse bird fish cow fox bear lion tiger man woman child girl boy person people "
    "tree flower rose house building bridge castle"
)
QUALIFIERS = _words(
    # lighting and time of day
    "golden hour morning evening noon midday dusk dawn twilight overcast cloudy foggy misty hazy "
    "daylight sunlight sunlit moonlight moonlit candlelight flash neon softbox spotlight backlit "
    "backlight rim ambient dramatic soft hard harsh diffused warm cool cold dim bright dark "
    # materials
    "leather ceramic porcelain steel metal iron copper brass bronze aluminium aluminum wooden wood oak "
    "walnut bamboo crystal marble granite concrete stone velvet silk satin wool linen cotton denim "
    "canvas suede plastic rubber paper cardboard"
)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|\d+(?:\.\d+)?")


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("es") and word[:-2] in NOUNS:
        return word[:-2]
    if word.endswith("s") and word[:-1] in NOUNS:
        return word[:-1]
    return word


def guard_signature(prompt: str) -> str:
    """Canonical ``colours|numbers|negations|nouns|qualifiers`` of ``prompt`` (each part sorted)."""
    words = ["grey" if w == "gray" else w for w in _WORD.findall(prompt.lower())]
    colours = sorted({w for w in words if w in COLOURS})
    negations = sorted({w for w in words if w in NEGATIONS})
    qualifiers = sorted({w for w in words if w in QUALIFIERS})
    numbers: set[str] = set()
    nouns: set[str] = set()
    plural = False
    for word in words:
        if word[0].isdigit():
            numbers.add(str(float(word)).removesuffix(".0"))
        elif word in NUMBER_WORDS and word not in ("a", "an"):
            numbers.add(str(NUMBER_WORDS[word]))
        singular = _singular(word)
        if singular in NOUNS:
            nouns.add(singular)
            plural = plural or singular != word
    if plural and not numbers:
        numbers.add("many")  # "sneakers" is not "a sneaker"
    parts = (colours, sorted(numbers), negations, sorted(nouns), qualifiers)
    return "|".join(",".join(part) for part in parts)
