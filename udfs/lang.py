"""Language identification with py3langid, whose model ships inside its wheel (no download)."""

from __future__ import annotations

from functools import lru_cache

# Enough text for a confident guess; long documents cost no more than this.
MAX_CHARS = 2000


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """ISO 639-1 code and probability of the text's language (``("und", 0.0)`` for empty text).

    Args:
        text: normalized text; only its first ``MAX_CHARS`` characters are looked at.
    """
    if not text.strip():
        return "und", 0.0
    lang, prob = _identifier().classify(text[:MAX_CHARS])
    return lang, float(prob)
