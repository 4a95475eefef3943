"""The words the lite text-to-image engine understands (studio.engines.lite_t2i): which asset
family, palette and pattern motif a prompt asks for. Stock prompt planning (studio.text.stock_prompts)
reads the same tables to write prompts the engine can honour; the engine renders from them."""

from __future__ import annotations

import re

# palette name -> words in the prompt that ask for it (the colours are the engine's: lite_t2i.PALETTES)
PALETTE_WORDS: dict[str, tuple[str, ...]] = {
    "pastel": ("pastel", "baby", "soft", "kids", "cute"),
    "coffee": ("coffee", "cafe", "latte", "espresso", "brown", "chocolate", "bakery", "bread", "mocha"),
    "ocean": ("ocean", "sea", "blue", "water", "summer", "beach", "wave", "navy", "aqua"),
    "forest": ("forest", "green", "leaf", "nature", "plant", "botanical", "eco", "olive", "tea"),
    "sunset": ("sunset", "dusk", "purple", "orange", "vibrant", "neon"),
    "night": ("night", "dark", "moody", "midnight", "galaxy", "space"),
    "spring": ("spring", "flower", "floral", "blossom", "cherry", "easter", "florist"),
    "autumn": ("autumn", "fall", "harvest", "maple", "thanksgiving", "warm"),
    "christmas": ("christmas", "xmas", "holiday", "winter", "festive", "new year"),
    "luxury": ("luxury", "gold", "golden", "premium", "elegant", "black"),
    "minimal": ("minimal", "white", "beige", "neutral", "clean", "simple", "grey", "gray", "paper"),
    "citrus": ("citrus", "lemon", "fruit", "juice", "fresh", "yellow"),
    "rose": ("rose", "pink", "wedding", "love", "valentine", "beauty", "cosmetic", "salon"),
    "mint": ("mint", "teal", "medical", "clinic", "spa", "cool"),
}

# family -> words in the prompt that ask for it (first match in the prompt wins)
FAMILY_WORDS: dict[str, tuple[str, ...]] = {
    "marble": ("marble", "stone slab", "granite"),
    "terrazzo": ("terrazzo", "speckle", "confetti"),
    "watercolor": ("watercolor", "watercolour", "ink wash", "paint wash", "aquarelle"),
    "concrete": ("concrete", "cement", "plaster", "stucco", "wall texture", "grunge"),
    "wood": ("wood", "wooden", "timber", "oak", "walnut", "plank"),
    "linen": ("linen", "fabric", "canvas", "cloth", "textile", "burlap"),
    "bokeh": ("bokeh", "lights", "sparkle", "glitter", "defocused", "blurred light"),
    "pattern": ("pattern", "seamless", "dots", "dot", "polka", "stripe", "stripes", "chevron", "wave", "waves",
                "gingham", "check", "plaid", "geometric", "hexagon", "scales"),
    "gradient": ("gradient", "mesh", "abstract", "aurora", "blur", "background", "backdrop", "wallpaper"),
}
MOTIFS: dict[str, tuple[str, ...]] = {
    "dots": ("dots", "dot", "polka"),
    "stripes": ("stripe", "stripes", "pinstripe"),
    "chevron": ("chevron", "zigzag"),
    "waves": ("wave", "waves", "scallop"),
    "gingham": ("gingham", "check", "plaid", "tartan"),
    "hexagon": ("hexagon", "honeycomb", "geometric"),
    "scales": ("scales", "fish scale", "seigaiha"),
}


def find_word(prompt: str, table: dict[str, tuple[str, ...]]) -> str | None:
    """The key whose word occurs earliest in the prompt (whole words)."""
    text = " " + re.sub(r"[^a-z]+", " ", prompt.lower()) + " "
    best: tuple[int, str] | None = None
    for key, words in table.items():
        for word in words:
            pos = text.find(f" {word} ")
            if pos >= 0 and (best is None or pos < best[0]):
                best = (pos, key)
    return best[1] if best else None
