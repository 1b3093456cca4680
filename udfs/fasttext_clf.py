"""The fastText page classifier's executor side: the text fastText reads, and a scorer of pandas batches.

fastText reads one example per line and splits words on whitespace; ``fasttext_text`` turns a page into that
line (lowercased, every run of non-word characters one space), the same on the driver when it writes the
training file (``jobs.methods.pageclf``) and here when it scores. ``FastTextScorer`` loads a saved model once
per Python worker (the worker keeps the last two it loaded: BETR's and the perplexity-correlation page
step's) and gives P(label 1) per page.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import numpy as np
import pandas as pd

POSITIVE, NEGATIVE = "__label__1", "__label__0"
_NON_WORD = re.compile(r"\W+")
_KEEP_MODELS = 2
_LOADED: OrderedDict[str, object] = OrderedDict()


def fasttext_text(text: str | None) -> str:
    """The page as fastText's input line: lowercased words separated by single spaces, no newline."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


def training_line(text: str | None, label: int) -> str:
    """One line of a fastText training file: the label, then the page's words."""
    return f"{POSITIVE if label == 1 else NEGATIVE} {fasttext_text(text)}\n"


def load_model(path: str):
    """The fastText model saved at ``path``, loaded once per Python worker."""
    if path in _LOADED:
        _LOADED.move_to_end(path)
        return _LOADED[path]
    import fasttext

    while len(_LOADED) >= _KEEP_MODELS:
        _LOADED.popitem(last=False)
    _LOADED[path] = model = fasttext.load_model(path)
    return model


class FastTextScorer:
    """P(include) of pages under a saved fastText model: ``predict_batch(texts) -> probabilities``.

    Args:
        path: the model file (on an executor: ``SparkFiles.get`` of the file the driver added).
    """

    name = "fasttext_page_classifier"

    def __init__(self, path: str):
        self.path = path

    def predict_batch(self, texts: pd.Series) -> pd.Series:
        """P(label 1) per page; a page without a single word gets 0.0 (fastText predicts nothing for it)."""
        model = load_model(self.path)
        lines = [fasttext_text(t) for t in texts]
        out = np.zeros(len(lines), dtype=np.float64)
        words = [i for i, line in enumerate(lines) if line]
        if words:
            labels, probs = model.predict([lines[i] for i in words], k=2)
            for i, labs, ps in zip(words, labels, probs, strict=True):
                p = dict(zip(labs, ps, strict=True))
                # Both labels come back (k=2 of 2); softmax probabilities sum to 1 up to rounding.
                out[i] = float(p[POSITIVE]) if POSITIVE in p else 1.0 - float(p.get(NEGATIVE, 1.0))
        return pd.Series(out, index=texts.index)
