"""Language identification with py3langid, whose model ships inside its wheel (no download).

Labels: py3langid's model knows 140 labels. Most are ISO 639-1 codes; the others are ISO 639-2/3 codes.
``identify`` maps those to ISO 639-1 where one exists: the code itself has a two-letter equivalent (``kik`` →
``ki``) or the language belongs to an ISO 639-3 macrolanguage that has one (``yue``, ``wuu`` → ``zh``;
``ary``, ``arz`` → ``ar``; ``uzs`` → ``uz``; …, see ``TO_ISO_639_1``). The rest keep their three-letter code
(``NO_ISO_639_1``: ``pcm`` Nigerian Pidgin, ``grc`` Ancient Greek, ``zxx`` no linguistic content, …).
``LABELS`` is every label ``identify`` can return for non-empty text.

How sure is sure enough is the clean stage's call (``clean.min_lang_score``): below it a document's
language is ``UNKNOWN``, not a guess.
"""

from __future__ import annotations

from functools import lru_cache

# Enough text for a confident guess; long documents cost no more than this.
MAX_CHARS = 2000

# Not an ISO code on purpose: it must never collide with a language.
UNKNOWN = "unknown"

TO_ISO_639_1 = {
    "ary": "ar",  # Moroccan Arabic, in the Arabic macrolanguage
    "arz": "ar",  # Egyptian Arabic, in the Arabic macrolanguage
    "fuv": "ff",  # Nigerian Fulfulde, in the Fulah macrolanguage
    "gug": "gn",  # Paraguayan Guaraní, in the Guarani macrolanguage
    "kik": "ki",  # Kikuyu
    "ltg": "lv",  # Latgalian, in the Latvian macrolanguage
    "sdh": "ku",  # Southern Kurdish, in the Kurdish macrolanguage
    "uzs": "uz",  # Southern Uzbek, in the Uzbek macrolanguage
    "wuu": "zh",  # Wu Chinese, in the Chinese macrolanguage
    "yue": "zh",  # Cantonese, in the Chinese macrolanguage
}

# Labels with no ISO 639-1 code: kept as py3langid gives them.
NO_ISO_639_1 = {
    "ace": "Acehnese",
    "bcl": "Central Bikol",
    "crh": "Crimean Tatar",
    "ext": "Extremaduran",
    "gcf": "Guadeloupean Creole French",
    "gcr": "Guianese Creole French",
    "gom": "Goan Konkani",
    "grc": "Ancient Greek",
    "guw": "Gun",
    "hbo": "Ancient Hebrew",
    "kab": "Kabyle",
    "lij": "Ligurian",
    "nso": "Northern Sotho",
    "pcm": "Nigerian Pidgin",
    "vec": "Venetian",
    "zxx": "no linguistic content",
}

# The ISO 639-1 codes py3langid's model labels (two-letter labels, plus the targets of TO_ISO_639_1).
_ISO_639_1 = (
    "af am an ar as az ba be bg bn br bs ca cs cy da de dz el en eo es et eu fa ff fi fo fr fy ga gd gl gn "
    "gu ha he hi hr ht hu hy id ig is it ja jv ka ki kk km kn ko ku ky la lb lg ln lo lt lv mg mk ml mn mr "
    "ms mt my ne nl nn no oc om or pa pl ps pt qu ro ru rw sa se si sk sl sn so sq sr st sv sw ta te tg th "
    "tk tl tr tt ug uk ur uz vi vo wa xh yo zh zu"
)
LABELS: frozenset[str] = frozenset(_ISO_639_1.split()) | frozenset(NO_ISO_639_1)


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def to_iso_639_1(label: str) -> str:
    """A py3langid label as ISO 639-1 where one exists (see the module docstring), else unchanged."""
    return TO_ISO_639_1.get(label, label)


def identify(text: str) -> tuple[str, float]:
    """Language label (one of ``LABELS``) and probability of the text's language (``(UNKNOWN, 0.0)`` for
    empty text).

    Args:
        text: normalized text; only its first ``MAX_CHARS`` characters are looked at.
    """
    if not text.strip():
        return UNKNOWN, 0.0
    lang, prob = _identifier().classify(text[:MAX_CHARS])
    return to_iso_639_1(lang), float(prob)
