"""The fastText page classifier's executor side: the text fastText reads, and a scorer of pandas batches.

fastText reads one example per line and splits words on whitespace; ``fasttext_text`` turns a page into that
line (lowercased, every run of non-word characters one space), the same on the driver when it writes the
training file (``jobs.methods.pageclf``) and here when it scores. ``FastTextScorer`` loads a saved model once
per Python worker (the worker keeps the last two it loaded: BETR's and the perplexity-correlation page
step's) and gives P(label 1) per page. ``zero_filled_allocations`` is what the driver trains under.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
import pandas as pd

POSITIVE, NEGATIVE = "__label__1", "__label__0"
_NON_WORD = re.compile(r"\W+")
_KEEP_MODELS = 2
_LOADED: OrderedDict[str, object] = OrderedDict()
_M_PERTURB = -6  # glibc's malloc.h
_PERTURB_LOCK = threading.Lock()
_PERTURB_USERS = 0
_log = logging.getLogger(__name__)


def fasttext_text(text: str | None) -> str:
    """The page as fastText's input line: lowercased words separated by single spaces, no newline."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


def training_line(text: str | None, label: int) -> str:
    """One line of a fastText training file: the label, then the page's words."""
    return f"{POSITIVE if label == 1 else NEGATIVE} {fasttext_text(text)}\n"


def _mallopt_perturb(value: int) -> bool:
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):  # not glibc (macOS, musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt(_M_PERTURB, value) == 1


@contextlib.contextmanager
def zero_filled_allocations() -> Iterator[bool]:
    """While open, glibc's malloc hands out zero-filled blocks; yields whether it could (False off glibc).

    Why: this fastText build (``fasttext-numpy2``, upstream's main since its "Predict 1.9-4.2x faster"
    change) keeps matrices in an ``AlignedVector`` that ``posix_memalign`` leaves uninitialised, and
    ``train_supervised`` fills only ``thread`` of ten blocks of the input matrix with random values
    (upstream's block split). With ``thread`` 1 the other nine tenths hold whatever the heap held: zeros in a
    fresh process, where glibc maps new pages, and freed data once glibc's dynamic mmap threshold has grown
    past the matrix, as in any busy driver. So two fits of one file differed, and a block of freed NaNs made
    training stop with "Encountered NaN." (seen in CI). glibc's ``M_PERTURB`` fills each block malloc hands
    out (above its small per-thread cache's sizes) with ``value ^ 0xff``: 0xff gives zeros, what upstream's
    ``std::vector`` gave, and fits repeat bit for bit. It is process-wide (and fills freed blocks with 0xff),
    so it is on only while a fit runs; a count keeps it on while any of several concurrent fits does.
    """
    global _PERTURB_USERS
    with _PERTURB_LOCK:
        ok = _PERTURB_USERS > 0 or _mallopt_perturb(0xFF)
        if ok:
            _PERTURB_USERS += 1
    if not ok:
        _log.warning("no glibc mallopt: fastText's untouched input rows are not zeroed, so fits may differ")
    try:
        yield ok
    finally:
        if ok:
            with _PERTURB_LOCK:
                _PERTURB_USERS -= 1
                if _PERTURB_USERS == 0:
                    _mallopt_perturb(0)


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
