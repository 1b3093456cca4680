"""The Gopher and FineWeb signals as datatrove publishes them (``GopherQualityFilter``,
``GopherRepetitionFilter``, ``FineWebQualityFilter``, datatrove 0.10), the rules' default definitions.
Pure Python, no Spark; ``udfs.quality.compute_signals`` adds them to the other signals.

- *words* are ``udfs.words.word_tokens``: spaCy's English tokens, punctuation included; a *symbol word* is
  made of punctuation only (datatrove's ``PUNCTUATION_SET``). The word count and mean word length count the
  other words; the ``#`` and ellipsis ratios and the alphabetic-word fraction divide by all tokens.
- ``#`` and ellipses (``...``, ``…``) are two ratios, each against its own 0.1 (Gopher: "for either the hash
  symbol or the ellipsis"); bullets are lines starting with ``•`` or ``-``; bullet and ellipsis lines are
  counted over ``str.splitlines()``, blank lines included.
- stop words: the distinct ones among the tokens (Gopher: "at least two of" the, be, to, of, and, that,
  have, with), matched case-sensitively as datatrove does; other languages use their ``STOP_WORDS`` list.
- repetition: paragraphs split on 2 or more newlines, lines on 1 or more; duplicate fractions of characters
  divide by ``len(text)``; the top n-gram (n = 2..4) is the most frequent one even when it occurs once,
  worth the length of its space-joined words times its count; duplicate n-grams (n = 5..10) count only
  later occurrences, skipping past each (datatrove's ``find_all_duplicate``), as characters of the joined
  words. n-grams are compared word by word; datatrove compares the concatenated words, which differs only
  when two different n-grams concatenate to the same string.
- FineWeb: lines ending in ``. ' " ! ?`` (FineWeb's release; sentence ends of other scripts too, as for
  every rule here), and newlines per token.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from functools import lru_cache
from itertools import accumulate

import regex

from schemas.signals import DUP_NS, TOP_NS
from udfs.words import word_tokens

# datatrove's PUNCTUATION (utils/text.py) and its TERMINAL_PUNCTUATION, which Unicode's Sentence_Terminal
# property covers; control characters are in it too.
_SYMBOL_CHARS = frozenset(string.punctuation + "—”％１〈、━【「」，】；“《„’∶´．（–？！：～«〉》）。…►»")
_SENTENCE_TERMINAL = regex.compile(r"[\p{Sentence_Terminal}\p{Cc}]")
_BULLETS = ("•", "-")
_ELLIPSES = ("...", "…")
_OTHER_END = ("。", "．", "｡", "！", "？", "」", "』", "।", "॥", "؟", "۔", "։", "።", "။", "។")
_FINEWEB_END = (".", "'", '"', "!", "?", *_OTHER_END)
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")

NAMES = (
    "gopher_word_count",
    "gopher_mean_word_length",
    "gopher_hash_to_word_ratio",
    "gopher_ellipsis_to_word_ratio",
    "gopher_frac_lines_start_with_bullet",
    "gopher_frac_lines_end_with_ellipsis",
    "gopher_frac_no_alpha_words",
    "gopher_distinct_stop_words",
    "gopher_frac_dup_lines",
    "gopher_frac_dup_paragraphs",
    "gopher_frac_dup_line_chars",
    "gopher_frac_dup_paragraph_chars",
    *(f"gopher_frac_chars_top_{n}gram" for n in TOP_NS),
    *(f"gopher_frac_chars_dupe_{n}grams" for n in DUP_NS),
    "fineweb_frac_lines_end_with_punct",
    "fineweb_newlines_per_token",
)


@lru_cache(maxsize=1 << 16)
def _symbol(token: str) -> bool:
    return all(ch in _SYMBOL_CHARS or _SENTENCE_TERMINAL.match(ch) for ch in token)


@lru_cache(maxsize=1 << 16)
def _has_letter(token: str) -> bool:
    return any(map(str.isalpha, token))


def _frac(num: float, den: float) -> float:
    return num / den if den else 0.0


def _duplicates(parts: list[str]) -> tuple[int, int]:
    """datatrove's ``find_duplicates``: parts equal to an earlier one, and their characters."""
    seen: set[str] = set()
    n = chars = 0
    for p in parts:
        if p in seen:
            n += 1
            chars += len(p)
        else:
            seen.add(p)
    return n, chars


def _ngram_signals(words: list[str], size: int) -> dict[str, float]:
    """The top and duplicate n-gram signals. An n-gram is keyed by its word ids read as the digits of a
    base-V number (exact, and far cheaper to hash than a tuple of strings); its characters come from prefix
    sums of the word lengths."""
    out = dict.fromkeys([f"gopher_frac_chars_top_{n}gram" for n in TOP_NS], 0.0)
    out.update(dict.fromkeys([f"gopher_frac_chars_dupe_{n}grams" for n in DUP_NS], 0.0))
    index: dict[str, int] = {}
    ids = [index.setdefault(w, len(index)) for w in words]
    base = len(index)
    prefix = [0, *accumulate(map(len, words))]
    keys = ids
    for n in range(2, DUP_NS[-1] + 1):
        keys = [k * base + t for k, t in zip(keys, ids[n - 1 :], strict=False)]
        if not keys:
            break
        if n in TOP_NS:
            # The most frequent n-gram, the first in the text among equals (as Counter.most_common gives it
            # to datatrove), even when it occurs once; its words joined by spaces.
            counts = Counter(keys)
            count = max(counts.values())
            i = keys.index(next(k for k, c in counts.items() if c == count))
            out[f"gopher_frac_chars_top_{n}gram"] = _frac((prefix[i + n] - prefix[i] + n - 1) * count, size)
            if count == 1 and n == TOP_NS[-1]:
                # No n-gram repeats, so no longer one does: the duplicate signals stay 0.
                break
        elif len(set(keys)) == len(keys):
            # No repeated n-gram, so no repeated longer one either: the common case for clean text.
            break
        else:
            # datatrove's find_all_duplicate: characters of n-grams seen before, scanning past each repeat.
            seen: set[int] = set()
            chars = i = 0
            while i < len(keys):
                if keys[i] in seen:
                    chars += prefix[i + n] - prefix[i]
                    i += n
                else:
                    seen.add(keys[i])
                    i += 1
            out[f"gopher_frac_chars_dupe_{n}grams"] = _frac(chars, size)
    return out


def published_signals(
    text: str, stop_words: frozenset[str], tokens: list[str] | None = None
) -> dict[str, float]:
    """The ``NAMES`` signals of one document (all 0.0 for empty text).

    Args:
        text: the document text.
        stop_words: the stop words of the document's language.
        tokens: ``word_tokens(text)`` when the caller has them already.
    """
    if tokens is None:
        tokens = word_tokens(text)
    n_tokens = len(tokens)
    words = [t for t in tokens if not _symbol(t)]
    alpha = sum(map(_has_letter, tokens))
    lines = text.splitlines()
    size = len(text)

    paragraphs = _PARAGRAPHS.split(text.strip())
    dup_paras, dup_para_chars = _duplicates(paragraphs)
    split_lines = _LINES.split(text)
    dup_lines, dup_line_chars = _duplicates(split_lines)
    non_empty = [line for line in text.split("\n") if line.strip()]

    out = {
        "gopher_word_count": len(words),
        "gopher_mean_word_length": _frac(sum(map(len, words)), len(words)),
        "gopher_hash_to_word_ratio": _frac(text.count("#"), n_tokens),
        "gopher_ellipsis_to_word_ratio": _frac(text.count("...") + text.count("…"), n_tokens),
        "gopher_frac_lines_start_with_bullet": _frac(
            sum(1 for s in lines if s.lstrip().startswith(_BULLETS)), len(lines)
        ),
        "gopher_frac_lines_end_with_ellipsis": _frac(
            sum(1 for s in lines if s.rstrip().endswith(_ELLIPSES)), len(lines)
        ),
        "gopher_frac_no_alpha_words": _frac(n_tokens - alpha, n_tokens),
        "gopher_distinct_stop_words": len(stop_words.intersection(tokens)),
        "gopher_frac_dup_lines": _frac(dup_lines, len(split_lines)) if size else 0.0,
        "gopher_frac_dup_paragraphs": _frac(dup_paras, len(paragraphs)) if size else 0.0,
        "gopher_frac_dup_line_chars": _frac(dup_line_chars, size),
        "gopher_frac_dup_paragraph_chars": _frac(dup_para_chars, size),
        **_ngram_signals(tokens, size),
        "fineweb_frac_lines_end_with_punct": _frac(
            sum(1 for line in non_empty if line.endswith(_FINEWEB_END)), len(non_empty)
        ),
        "fineweb_newlines_per_token": _frac(text.count("\n"), n_tokens),
    }
    return out
