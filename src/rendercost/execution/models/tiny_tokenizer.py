"""A small CLIP tokenizer built offline for the tiny model: byte-level BPE learned from a fixed word list.

Real CLIP has 49,408 tokens; this one has about 2,000, learned by a deterministic BPE over the words
below (common English and image-prompt words), so a typical prompt costs about one token per word and
an unseen word falls back to sub-words, never to an unknown token. Same input, same files, every time.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from pathlib import Path

from transformers import CLIPTokenizer

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"
MODEL_MAX_LENGTH = 77  # CLIP's context, BOS and EOS included
MAX_MERGES = 1800  # enough to make every word below one token

_WORDS = """
a an the and or but of in on at to for with from by as is are was were be been being it its this that
these those there here he she they we you i me my your our their his her them us not no yes all any some
many much more most few less very too so than then into onto over under above below between behind
beside near far inside outside through across around after before during while up down out off again
still just only also even ever never always often one two three four five six seven eight nine ten first
second last next new old young big small large tiny huge tall short long wide narrow high low deep light
dark bright dim soft hard smooth rough wet dry hot cold warm cool clean dirty empty full open closed
quiet loud fast slow heavy thin thick round square flat sharp broken golden silver wooden red orange
yellow green blue purple pink brown black white gray grey cyan magenta teal turquoise violet beige
crimson scarlet navy pastel neon vivid muted colorful monochrome saturated vibrant photo photograph
picture image painting drawing sketch illustration render rendering portrait landscape closeup close
view shot scene still life concept art artwork poster cover wallpaper cinematic dramatic lighting light
shadow shadows sunlight moonlight sunset sunrise dawn dusk night day morning evening afternoon noon
midnight fog mist haze rain snow storm cloud clouds cloudy sky sun moon star stars galaxy space planet
universe cosmic nebula aurora rainbow lightning thunder wind mountain mountains hill hills valley river
lake ocean sea beach coast shore island desert forest jungle woods tree trees flower flowers garden
field meadow grass leaf leaves rock rocks stone stones cave waterfall volcano glacier ice fire flame
smoke water wave waves sand dust earth ground soil city town village street road bridge building
buildings house home castle tower temple church palace ruins room kitchen bedroom library office shop
market station airport harbor park farm factory window door wall floor roof stairs table chair bed lamp
mirror book books cup bottle glass plate man woman boy girl child children baby person people family
friend king queen prince princess knight warrior soldier wizard witch robot cyborg alien monster dragon
angel demon ghost zombie vampire elf astronaut pilot sailor pirate chef doctor artist musician dancer
student teacher farmer hunter cat dog horse bird birds fish lion tiger bear wolf fox deer rabbit mouse
owl eagle snake frog butterfly bee spider elephant giraffe monkey panda penguin dolphin whale shark
turtle cow sheep pig car cars truck bus train plane airplane ship boat bicycle motorcycle rocket
spaceship helicopter face eyes eye hair hands hand head body smile smiling laughing crying sad happy
angry calm serious sitting standing walking running flying swimming jumping dancing reading eating
drinking sleeping playing holding wearing looking watching riding fighting singing painting writing
cooking dress shirt jacket coat hat helmet armor crown mask glasses shoes boots gloves cloak robe
uniform suit scarf necklace ring jewelry sword shield bow gun staff wand style styled realistic
photorealistic hyperrealistic surreal abstract minimalist detailed intricate highly ultra quality best
masterpiece resolution sharp focus blurry blur bokeh depth background foreground texture pattern
composition perspective symmetry lens camera film analog digital vintage retro modern futuristic ancient
medieval fantasy science fiction cyberpunk steampunk gothic baroque renaissance impressionist
impressionism expressionism watercolor oil acrylic ink pencil charcoal pastel crayon anime manga cartoon
comic pixel vector isometric voxel clay origami sculpture statue mosaic stained graphic design logo icon
typography geometric fractal trending award winning professional studio natural ambient volumetric rim
global illumination reflection reflections glow glowing shiny metallic matte glossy transparent
translucent octane unreal engine raytracing hdr wide angle telephoto macro aerial drone bird's eye
beautiful pretty cute ugly scary creepy elegant graceful peaceful serene mysterious magical epic
majestic cozy lonely dreamy ethereal moody gloomy cheerful whimsical nostalgic romantic bad worst lowres
low watermark text signature jpeg artifacts deformed disfigured extra missing fingers limbs cropped
duplicate mutated poorly drawn anatomy proportions make made making show shows shown see seen have has
had do does did can could will would should may might must get got take took give gave come came go went
look like love want need know think feel
""".split()  # noqa: SIM905 (a word list reads best as text)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table, which CLIP's byte-level BPE uses."""
    printable = list(range(ord("!"), ord("~") + 1))
    printable += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _pairs(symbols: list[str]) -> Counter[tuple[str, str]]:
    return Counter(itertools.pairwise(symbols))


def _merge_word(symbols: list[str], pair: tuple[str, str]) -> list[str]:
    merged: list[str] = []
    i = 0
    while i < len(symbols):
        if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == pair:
            merged.append(symbols[i] + symbols[i + 1])
            i += 2
        else:
            merged.append(symbols[i])
            i += 1
    return merged


class _Bpe:
    """BPE training state: the corpus as symbol lists, pair counts, and which words hold each pair."""

    def __init__(self, words: list[str]) -> None:
        byte_chars = _bytes_to_unicode()
        self.corpus: list[list[str]] = []
        self.counts: list[int] = []
        for word, count in sorted(Counter(word.lower() for word in words).items()):
            chars = [byte_chars[b] for b in word.encode()]
            chars[-1] += END_OF_WORD
            self.corpus.append(chars)
            self.counts.append(count)
        self.pair_counts: Counter[tuple[str, str]] = Counter()
        self.where: dict[tuple[str, str], set[int]] = {}
        for index, symbols in enumerate(self.corpus):
            for pair, n in _pairs(symbols).items():
                self.pair_counts[pair] += n * self.counts[index]
                self.where.setdefault(pair, set()).add(index)

    def merge(self, best: tuple[str, str]) -> set[tuple[str, str]]:
        """Merge ``best`` everywhere; return the pairs whose counts changed."""
        changed: set[tuple[str, str]] = set()
        for index in sorted(self.where.pop(best, set())):
            old_pairs = _pairs(self.corpus[index])
            self.corpus[index] = _merge_word(self.corpus[index], best)
            new_pairs = _pairs(self.corpus[index])
            for pair in old_pairs.keys() | new_pairs.keys():
                delta = (new_pairs[pair] - old_pairs[pair]) * self.counts[index]
                if delta:
                    self.pair_counts[pair] += delta
                    changed.add(pair)
                if new_pairs[pair]:
                    self.where.setdefault(pair, set()).add(index)
        self.pair_counts.pop(best, None)
        return changed - {best}


def learn_merges(words: list[str], max_merges: int = MAX_MERGES) -> list[tuple[str, str]]:
    """Byte-level BPE: repeatedly merge the most frequent adjacent pair (ties: smallest pair first).

    Pair counts are updated only for the words a merge touches, and the best pair comes from a heap
    whose stale entries are skipped, so learning takes well under a second.
    """
    bpe = _Bpe(words)
    heap = [(-count, pair) for pair, count in bpe.pair_counts.items()]
    heapq.heapify(heap)
    merges: list[tuple[str, str]] = []
    while heap and len(merges) < max_merges:
        negative_count, best = heapq.heappop(heap)
        if negative_count == 0 or bpe.pair_counts.get(best, 0) != -negative_count:
            continue  # stale entry
        merges.append(best)
        for pair in sorted(bpe.merge(best)):
            if bpe.pair_counts[pair] > 0:
                heapq.heappush(heap, (-bpe.pair_counts[pair], pair))
    return merges


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's layout: byte characters, the same with ``</w>``, one token per merge, then BOS and EOS."""
    base = list(_bytes_to_unicode().values())
    tokens = base + [c + END_OF_WORD for c in base] + [a + b for a, b in merges] + [BOS, EOS]
    vocab: dict[str, int] = {}
    for token in tokens:
        vocab.setdefault(token, len(vocab))
    return vocab


def build_tiny_tokenizer() -> CLIPTokenizer:
    """The tiny model's tokenizer, in memory."""
    merges = learn_merges(_WORDS)
    return CLIPTokenizer(
        vocab=build_vocab(merges),
        merges=merges,
        model_max_length=MODEL_MAX_LENGTH,
    )


def write_tiny_tokenizer(path: Path) -> int:
    """Save the tokenizer into ``path`` (a pipeline's ``tokenizer`` folder); return its vocabulary size."""
    tokenizer = build_tiny_tokenizer()
    tokenizer.save_pretrained(str(path))
    return len(tokenizer)
