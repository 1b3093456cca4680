"""Per-document heuristic quality signals and rule verdicts for the clean stage. Pure Python, no Spark.

``compute_signals`` runs on executors for every document, so it reads the text in one pass over its lines,
one whitespace split and a handful of linear n-gram passes; nothing in it is quadratic in the document
(about 0.4 ms for 2 KB of prose in CPython 3.11).
``evaluate`` turns the signals into a verdict with the Gopher (quality and repetition), C4 and FineWeb rules
as datatrove and RedPajama-V2 define them; the first failing check is the reason a document is dropped.

Tokenization, shared by every signal:

- *lines*: ``text.split("\\n")``; a *non-empty line* is one with ``line.strip()``. Line tests (bullets,
  ellipses, terminal punctuation, length, duplicates) look at the stripped line, so ``"\\r"`` and trailing
  blanks never hide the last character.
- *words*: ``text.split()``. An *alphabetic word* has at least one ``str.isalpha()`` character.
- *n-gram tokens*: the words lowercased with leading and trailing ``string.punctuation`` stripped, dropping
  those that become empty (RedPajama-V2 removes all punctuation; we keep it inside words such as ``don't``
  or ``3.5``). The stop-word count, unique-word fraction, unigram entropy and every n-gram signal use them;
  character counts in n-gram signals are sums of token lengths, so spaces and stripped punctuation never
  count.
- *paragraphs*: the text split on runs of blank lines (a line holding only whitespace is blank, so
  ``"\\n\\n"``, ``"\\n  \\n"`` and ``"\\r\\n\\r\\n"`` all separate paragraphs), stripped, empty ones dropped.
- a line or paragraph is a *duplicate* when the same stripped string occurred earlier in the document, so
  the first occurrence is never counted.

Where the definitions differ from their sources, on purpose:

- ``rps_doc_frac_chars_dupe_{n}grams`` follows RedPajama-V2: every occurrence of a repeated n-gram,
  the first included, marks its words, and each marked word counts once. datatrove's ``find_all_duplicate``
  counts only the later occurrences, so our values are higher on the same text (up to twice) and the Gopher
  thresholds are stricter here than in datatrove.
- Terminal punctuation (C4, FineWeb) also counts the sentence ends of other scripts (``。！？」』``, danda,
  ``؟ ۔ ։ ። ။ ។``), so Japanese, Chinese, Hindi or Arabic lines are judged like English ones.
- ``gopher_stop_word_count`` counts the stop words of the document's language (``STOP_WORDS``; Gopher's 8
  for English, and for text of unknown language).
- ``rps_doc_frac_chars_top_{n}gram`` is 0 when no n-gram occurs twice, as in RedPajama-V2 (datatrove counts
  a unique n-gram too, which only matters for very short documents). Overlapping occurrences each count, so
  ``"a a a a"`` scores 1.5 for 2-grams: the value is not bounded by 1.
- Line and paragraph character fractions divide by the characters of the stripped non-empty lines
  (paragraphs), not by ``len(text)`` as datatrove does; ``fineweb_char_dup_ratio`` keeps datatrove's
  denominator ``len(text)`` minus newlines.

Languages: some checks assume what English text looks like, and ``evaluate`` skips them for a document in a
language where that does not hold (``applies``): checks on whitespace words (counts, lengths, stop words, word
n-grams, newlines per word) and on short lines for languages written without spaces between words
(``UNSPACED_LANGS``: ja, zh, th, lo, km, my), the stop-word check for languages without a stop-word list,
terminal punctuation for languages that do not mark sentence ends (th, lo). ``skipped_checks`` lists them for
the clean stage's startup warning. English and ``unknown`` documents get every check.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, compress, repeat
from operator import not_
from typing import Any


@dataclass(frozen=True)
class Signal:
    """One per-document signal and the range every value of it falls in.

    Attributes:
        name: column name in ``scores.quality`` and key in ``compute_signals`` output.
        lo: smallest possible value.
        hi: largest possible value, or None when it is unbounded (counts, entropy, some ratios).
        description: what the value measures, for the table schema.
    """

    name: str
    lo: float
    hi: float | None
    description: str


@dataclass(frozen=True)
class Check:
    """The outcome of one threshold of one rule on one document.

    Attributes:
        rule: rule name, e.g. ``gopher_quality``.
        check: check name within the rule, e.g. ``word_count``.
        value: the signal value the threshold was applied to.
        passed: whether the document passes this check.
    """

    rule: str
    check: str
    value: float
    passed: bool

    @property
    def reason(self) -> str:
        """``rule:check``, the drop reason written to ``silver.filtered``."""
        return f"{self.rule}:{self.check}"


_TOP_NS = (2, 3, 4)
_DUP_NS = (5, 6, 7, 8, 9, 10)
_SHORT_LINE_CHARS = 30

SIGNALS: tuple[Signal, ...] = (
    # Gopher quality
    Signal("rps_doc_word_count", 0.0, None, "number of whitespace-separated words"),
    Signal("rps_doc_mean_word_length", 0.0, None, "mean characters per word"),
    Signal("rps_doc_symbol_to_word_ratio", 0.0, None, "('#' + '...' + '…' occurrences) per word"),
    Signal(
        "rps_doc_frac_lines_start_with_bullet", 0.0, 1.0, "lines starting with a bullet, per non-empty line"
    ),
    Signal(
        "rps_doc_frac_lines_end_with_ellipsis", 0.0, 1.0, "lines ending with an ellipsis, per non-empty line"
    ),
    Signal("rps_doc_frac_no_alph_words", 0.0, 1.0, "fraction of words without an alphabetic character"),
    Signal("gopher_stop_word_count", 0.0, None, "stop-word occurrences (Gopher's 8 for English)"),
    Signal("rps_doc_stop_word_fraction", 0.0, 1.0, "stop-word occurrences per word"),
    # Gopher repetition
    Signal("rps_doc_frac_dup_lines", 0.0, 1.0, "lines repeating an earlier line, per non-empty line"),
    Signal("rps_doc_frac_dup_line_chars", 0.0, 1.0, "fraction of line characters in repeated lines"),
    Signal("rps_doc_frac_dup_paragraphs", 0.0, 1.0, "fraction of paragraphs repeating an earlier one"),
    Signal("rps_doc_frac_dup_paragraph_chars", 0.0, 1.0, "fraction of paragraph characters in repeats"),
    *(
        # (n-grams - n + 1) overlapping occurrences of n tokens each can cover up to n times the characters.
        Signal(f"rps_doc_frac_chars_top_{n}gram", 0.0, float(n), f"characters in the top word {n}-gram")
        for n in _TOP_NS
    ),
    *(
        Signal(f"rps_doc_frac_chars_dupe_{n}grams", 0.0, 1.0, f"fraction of characters in repeated {n}-grams")
        for n in _DUP_NS
    ),
    # C4
    Signal("c4_frac_lines_end_with_punct", 0.0, 1.0, "lines ending in . ! ? or a quote, per non-empty line"),
    Signal("rps_doc_lorem_ipsum", 0.0, 1.0, "1 if the text contains 'lorem ipsum'"),
    Signal("rps_lines_javascript_counts", 0.0, None, "lines mentioning 'javascript'"),
    Signal("c4_policy_line_count", 0.0, None, "lines mentioning terms of use, privacy or cookie policies"),
    Signal("rps_doc_curly_bracket", 0.0, 1.0, "1 if the text contains '{'"),
    # FineWeb
    Signal("fineweb_line_punct_ratio", 0.0, 1.0, "lines ending in . ? ! \" ' or ”, per non-empty line"),
    Signal(
        "fineweb_short_line_ratio",
        0.0,
        1.0,
        f"lines of <= {_SHORT_LINE_CHARS} characters, per non-empty line",
    ),
    Signal("fineweb_char_dup_ratio", 0.0, 1.0, "characters in repeated lines per non-newline character"),
    Signal("fineweb_list_ratio", 0.0, None, "newlines per word"),
    # For Meta-rater
    Signal("rps_doc_frac_unique_words", 0.0, 1.0, "distinct n-gram tokens per token"),
    Signal("rps_doc_unigram_entropy", 0.0, None, "Shannon entropy (nats) of the token distribution"),
    Signal("rps_doc_frac_all_caps_words", 0.0, 1.0, "fraction of words that are all upper case"),
    Signal("rps_doc_num_lines", 0.0, None, "number of non-empty lines"),
    Signal("rps_doc_num_chars", 0.0, None, "number of characters"),
)

_NGRAM_SIGNALS = tuple(
    [f"rps_doc_frac_chars_top_{n}gram" for n in _TOP_NS]
    + [f"rps_doc_frac_chars_dupe_{n}grams" for n in _DUP_NS]
)
_PUNCT = string.punctuation
_BULLETS = ("•", "‣", "⁃", "◦", "▪", "-", "*", "·")
_ELLIPSES = ("...", "…")
# Sentence ends of scripts other than Latin: CJK full stops, marks and closing quotes, Devanagari danda,
# Arabic question mark, Urdu full stop, Armenian, Ethiopic, Myanmar and Khmer full stops.
_OTHER_END = ("。", "．", "｡", "！", "？", "」", "』", "।", "॥", "؟", "۔", "։", "።", "။", "។")
_C4_END = (".", "!", "?", '"', "'", "”", "’", *_OTHER_END)
_FINEWEB_END = (".", "?", "!", '"', "'", "”", *_OTHER_END)
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
# Gopher's 8 for English; for other languages written with spaces, their most frequent function words.
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"the", "be", "to", "of", "and", "that", "have", "with"}),
    "de": frozenset({"der", "die", "das", "und", "zu", "von", "mit", "ist"}),
    "fr": frozenset({"le", "la", "les", "de", "et", "à", "un", "est"}),
    "es": frozenset({"el", "la", "de", "que", "y", "en", "los", "es"}),
    "it": frozenset({"il", "la", "di", "che", "e", "in", "un", "è"}),
    "pt": frozenset({"o", "a", "de", "que", "e", "do", "da", "em"}),
    "nl": frozenset({"de", "het", "een", "en", "van", "in", "is", "dat"}),
    "ru": frozenset({"и", "в", "не", "на", "что", "с", "по", "это"}),
}
# Written without spaces between words: whitespace "words" are phrases or whole sentences there.
UNSPACED_LANGS = frozenset({"ja", "zh", "th", "lo", "km", "my"})
# Sentence ends are not marked (a space separates sentences).
UNPUNCTUATED_LANGS = frozenset({"th", "lo"})
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _frac(num: float, den: float) -> float:
    return num / den if den else 0.0


def _ngram_fracs(tokens: list[str], counts: Counter) -> dict[str, float]:
    """The top and duplicate n-gram signals from the tokens and their counts."""
    out = dict.fromkeys(_NGRAM_SIGNALS, 0.0)
    n_tokens = len(tokens)
    if n_tokens < _TOP_NS[0]:
        return out
    # An n-gram is keyed by its token ids read as the digits of a base-V number: exact, and an int hashes
    # far faster than a tuple of strings, which Python re-hashes on every lookup.
    base = len(counts)
    index = {t: i for i, t in enumerate(counts)}
    ids = list(map(index.__getitem__, tokens))
    lengths = list(map(len, tokens))
    total = sum(lengths)
    keys = ids
    for n in range(2, _DUP_NS[0] + 1):
        if n_tokens < n:
            return out
        keys = [k * base + t for k, t in zip(keys, ids[n - 1 :], strict=False)]
        grams = Counter(keys)
        if len(grams) == len(keys):
            # No n-gram repeats, so no longer one does either: the common case for clean text at n = 5. And
            # as in RedPajama-V2, the top n-gram of a text without repeats scores 0.
            return out
        if n in _TOP_NS:
            count = max(grams.values())
            # Counter keeps first-seen order, so ties go to the n-gram that occurs first in the text.
            key = next(k for k, c in grams.items() if c == count)
            i = keys.index(key)
            out[f"rps_doc_frac_chars_top_{n}gram"] = sum(lengths[i : i + n]) * count / total
    prefix = [0, *accumulate(lengths)]
    dup_pos = [i for i, k in enumerate(keys) if grams[k] > 1]
    for n in _DUP_NS:
        if n > _DUP_NS[0]:
            # Both (n-1)-grams inside a repeated n-gram repeat too, so only positions where the (n-1)-grams at
            # i and i+1 both repeat can start one; every occurrence of a repeated n-gram is such a position.
            prev = set(dup_pos)
            keys = {i: keys[i] * base + ids[i + n - 1] for i in dup_pos if i + 1 in prev}
            grams = Counter(keys.values())
            dup_pos = [i for i, k in keys.items() if grams[k] > 1]
            if not dup_pos:
                break
        # Positions ascend, so a sweep with the end of the covered span counts each word once.
        covered = end = 0
        for i in dup_pos:
            covered += prefix[i + n] - prefix[i if i > end else end]
            end = i + n
        out[f"rps_doc_frac_chars_dupe_{n}grams"] = covered / total
    return out


def compute_signals(text: str, lang: str = "en") -> dict[str, float]:
    """All ``SIGNALS`` for one document.

    Args:
        text: the document text (newlines kept: line signals need them).
        lang: the document's language; picks the stop words (English ones for a language without a list).

    Returns:
        Every ``SIGNALS`` name mapped to a float inside its range; never NaN, all 0.0 for empty text.
    """
    low = text.lower()

    n_lines = line_chars = dup_lines = dup_line_chars = 0
    bullets = ellipses = c4_punct = fw_punct = short = 0
    seen: set[str] = set()
    for line in text.split("\n"):
        s = line.strip()
        if not s:
            continue
        n_lines += 1
        size = len(s)
        line_chars += size
        if s in seen:
            dup_lines += 1
            dup_line_chars += size
        else:
            seen.add(s)
        if size <= _SHORT_LINE_CHARS:
            short += 1
        if s.startswith(_BULLETS):
            bullets += 1
        if s.endswith(_ELLIPSES):
            ellipses += 1
        if s.endswith(_C4_END):
            c4_punct += 1
        if s.endswith(_FINEWEB_END):
            fw_punct += 1

    javascript = policy = 0
    # Nearly all documents mention none of these; one scan of the whole text spares a per-line search.
    if "javascript" in low or any(p in low for p in _POLICY):
        for line in low.split("\n"):
            javascript += "javascript" in line
            policy += any(p in line for p in _POLICY)

    n_paras = para_chars = dup_paras = dup_para_chars = 0
    seen = set()
    for para in _PARAGRAPH_BREAK.split(text):
        p = para.strip()
        if not p:
            continue
        n_paras += 1
        para_chars += len(p)
        if p in seen:
            dup_paras += 1
            dup_para_chars += len(p)
        else:
            seen.add(p)

    words = text.split()
    n_words = len(words)
    # Most words are all letters; only the rest need a character scan.
    mixed = compress(words, map(not_, map(str.isalpha, words)))
    no_alpha = sum(1 for w in mixed if not any(map(str.isalpha, w)))
    symbols = text.count("#") + text.count("...") + text.count("…")

    tokens = list(filter(None, map(str.strip, low.split(), repeat(_PUNCT))))
    n_tokens = len(tokens)
    counts = Counter(tokens)
    # Grouped by count, a few log() calls instead of one per distinct word. Summing -p*ln(p) rather than
    # ln(N) - sum(c*ln c)/N keeps every term >= 0, so rounding never makes the entropy negative.
    by_count = Counter(counts.values()).items()
    entropy = -sum(m * c * math.log(c / n_tokens) for c, m in by_count) / n_tokens if n_tokens else 0.0
    stop_words = sum(map(STOP_WORDS.get(lang, STOP_WORDS["en"]).__contains__, tokens))

    newlines = text.count("\n")
    signals = {
        "rps_doc_word_count": n_words,
        "rps_doc_mean_word_length": _frac(sum(map(len, words)), n_words),
        "rps_doc_symbol_to_word_ratio": _frac(symbols, n_words),
        "rps_doc_frac_lines_start_with_bullet": _frac(bullets, n_lines),
        "rps_doc_frac_lines_end_with_ellipsis": _frac(ellipses, n_lines),
        "rps_doc_frac_no_alph_words": _frac(no_alpha, n_words),
        "gopher_stop_word_count": stop_words,
        "rps_doc_stop_word_fraction": _frac(stop_words, n_words),
        "rps_doc_frac_dup_lines": _frac(dup_lines, n_lines),
        "rps_doc_frac_dup_line_chars": _frac(dup_line_chars, line_chars),
        "rps_doc_frac_dup_paragraphs": _frac(dup_paras, n_paras),
        "rps_doc_frac_dup_paragraph_chars": _frac(dup_para_chars, para_chars),
    }
    signals.update(_ngram_fracs(tokens, counts))
    signals.update(
        {
            "c4_frac_lines_end_with_punct": _frac(c4_punct, n_lines),
            "rps_doc_lorem_ipsum": "lorem ipsum" in low,
            "rps_lines_javascript_counts": javascript,
            "c4_policy_line_count": policy,
            "rps_doc_curly_bracket": "{" in text,
            "fineweb_line_punct_ratio": _frac(fw_punct, n_lines),
            "fineweb_short_line_ratio": _frac(short, n_lines),
            "fineweb_char_dup_ratio": _frac(dup_line_chars, len(text) - newlines),
            "fineweb_list_ratio": _frac(newlines, n_words),
            "rps_doc_frac_unique_words": _frac(len(counts), n_tokens),
            "rps_doc_unigram_entropy": entropy,
            "rps_doc_frac_all_caps_words": _frac(sum(map(str.isupper, words)), n_words),
            "rps_doc_num_lines": n_lines,
            "rps_doc_num_chars": len(text),
        }
    )
    return {k: float(v) for k, v in signals.items()}


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------

DEFAULT_RULES: tuple[tuple[str, dict], ...] = (
    (
        "gopher_quality",
        {
            "min_words": 50,
            "max_words": 100_000,
            "min_mean_word_length": 3,
            "max_mean_word_length": 10,
            "max_symbol_word_ratio": 0.1,
            "max_bullet_lines_ratio": 0.9,
            "max_ellipsis_lines_ratio": 0.3,
            "max_non_alpha_words_ratio": 0.2,
            "min_stop_words": 2,
        },
    ),
    (
        "gopher_repetition",
        {
            "dup_line_frac": 0.3,
            "dup_para_frac": 0.3,
            "dup_line_char_frac": 0.2,
            "dup_para_char_frac": 0.2,
            "top_n_grams": {2: 0.2, 3: 0.18, 4: 0.16},
            "dup_n_grams": {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        },
    ),
    (
        "c4",
        {
            "min_frac_lines_end_with_punct": 0.2,
            "filter_lorem_ipsum": True,
            "max_javascript_lines": 2,
            "max_policy_lines": 2,
            "filter_curly_bracket": False,
        },
    ),
    (
        "fineweb",
        {
            "line_punct_thr": 0.12,
            "short_line_thr": 0.67,
            "char_duplicates_ratio": 0.01,
            "new_line_ratio": 0.3,
        },
    ),
)
_DEFAULTS: dict[str, dict] = dict(DEFAULT_RULES)
_NGRAM_PARAMS = {"top_n_grams": _TOP_NS, "dup_n_grams": _DUP_NS}


def _params(rule: str, params: Mapping | None) -> dict:
    return {**_DEFAULTS[rule], **params} if params else _DEFAULTS[rule]


def _bound(out: list[Check], rule: str, check: str, value: float, lo=None, hi=None) -> None:
    """Appends a check that passes when lo <= value <= hi; a None bound is open, both None skips the check."""
    if lo is None and hi is None:
        return
    passed = (lo is None or value >= lo) and (hi is None or value <= hi)
    out.append(Check(rule, check, value, passed))


def _flag(out: list[Check], rule: str, check: str, value: float, enabled: bool) -> None:
    if enabled:
        out.append(Check(rule, check, value, value == 0.0))


def _ngram_items(thresholds: Mapping | None) -> list[tuple[int, Any]]:
    # YAML and JSON may hand the n as a string key.
    return sorted((int(n), thr) for n, thr in (thresholds or {}).items())


def gopher_quality(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """Gopher quality checks (Rae et al. 2021; datatrove ``GopherQualityFilter``).

    Args:
        signals: ``compute_signals`` output.
        params: threshold overrides for ``DEFAULT_RULES["gopher_quality"]``; None disables a threshold.
    """
    p, r, s, out = _params("gopher_quality", params), "gopher_quality", signals, []
    _bound(out, r, "word_count", s["rps_doc_word_count"], lo=p["min_words"])
    _bound(out, r, "word_count_max", s["rps_doc_word_count"], hi=p["max_words"])
    _bound(
        out,
        r,
        "mean_word_length",
        s["rps_doc_mean_word_length"],
        lo=p["min_mean_word_length"],
        hi=p["max_mean_word_length"],
    )
    _bound(out, r, "symbol_word_ratio", s["rps_doc_symbol_to_word_ratio"], hi=p["max_symbol_word_ratio"])
    _bound(out, r, "bullet_lines", s["rps_doc_frac_lines_start_with_bullet"], hi=p["max_bullet_lines_ratio"])
    _bound(
        out, r, "ellipsis_lines", s["rps_doc_frac_lines_end_with_ellipsis"], hi=p["max_ellipsis_lines_ratio"]
    )
    _bound(out, r, "alpha_words", s["rps_doc_frac_no_alph_words"], hi=p["max_non_alpha_words_ratio"])
    _bound(out, r, "stop_words", s["gopher_stop_word_count"], lo=p["min_stop_words"])
    return out


def gopher_repetition(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """Gopher repetition checks (Rae et al. 2021; datatrove ``GopherRepetitionFilter``).

    Args:
        signals: ``compute_signals`` output.
        params: threshold overrides for ``DEFAULT_RULES["gopher_repetition"]``. ``top_n_grams`` (n in 2..4)
            and ``dup_n_grams`` (n in 5..10) replace the whole default mapping; leave an n out to skip it.
    """
    p, r, s, out = _params("gopher_repetition", params), "gopher_repetition", signals, []
    _bound(out, r, "dup_line_frac", s["rps_doc_frac_dup_lines"], hi=p["dup_line_frac"])
    _bound(out, r, "dup_para_frac", s["rps_doc_frac_dup_paragraphs"], hi=p["dup_para_frac"])
    _bound(out, r, "dup_line_char_frac", s["rps_doc_frac_dup_line_chars"], hi=p["dup_line_char_frac"])
    _bound(out, r, "dup_para_char_frac", s["rps_doc_frac_dup_paragraph_chars"], hi=p["dup_para_char_frac"])
    for n, thr in _ngram_items(p["top_n_grams"]):
        _bound(out, r, f"top_{n}gram", s[f"rps_doc_frac_chars_top_{n}gram"], hi=thr)
    for n, thr in _ngram_items(p["dup_n_grams"]):
        _bound(out, r, f"dup_{n}gram", s[f"rps_doc_frac_chars_dupe_{n}grams"], hi=thr)
    return out


def c4(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """C4 document checks (Raffel et al. 2020), as document-level thresholds rather than line removal.

    Args:
        signals: ``compute_signals`` output.
        params: threshold overrides for ``DEFAULT_RULES["c4"]``; the ``filter_*`` flags turn checks on or off.
    """
    p, r, s, out = _params("c4", params), "c4", signals, []
    _bound(out, r, "terminal_punct", s["c4_frac_lines_end_with_punct"], lo=p["min_frac_lines_end_with_punct"])
    _flag(out, r, "lorem_ipsum", s["rps_doc_lorem_ipsum"], p["filter_lorem_ipsum"])
    _bound(out, r, "javascript", s["rps_lines_javascript_counts"], hi=p["max_javascript_lines"])
    _bound(out, r, "policy", s["c4_policy_line_count"], hi=p["max_policy_lines"])
    _flag(out, r, "curly_bracket", s["rps_doc_curly_bracket"], p["filter_curly_bracket"])
    return out


def fineweb(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """FineWeb quality checks (datatrove ``FineWebQualityFilter``).

    Args:
        signals: ``compute_signals`` output.
        params: threshold overrides for ``DEFAULT_RULES["fineweb"]``; None disables a threshold.
    """
    p, r, s, out = _params("fineweb", params), "fineweb", signals, []
    _bound(out, r, "line_punct_ratio", s["fineweb_line_punct_ratio"], lo=p["line_punct_thr"])
    _bound(out, r, "short_line_ratio", s["fineweb_short_line_ratio"], hi=p["short_line_thr"])
    _bound(out, r, "char_dup_ratio", s["fineweb_char_dup_ratio"], hi=p["char_duplicates_ratio"])
    _bound(out, r, "list_ratio", s["fineweb_list_ratio"], hi=p["new_line_ratio"])
    return out


RULES: dict[str, Callable[[dict[str, float], dict], list[Check]]] = {
    "gopher_quality": gopher_quality,
    "gopher_repetition": gopher_repetition,
    "c4": c4,
    "fineweb": fineweb,
}


# Checks on whitespace words, and the short-line check, whose 30 characters are some 6 English words but a
# whole sentence in Chinese or Japanese: none fits a language written without spaces.
_SPACED_CHECKS = frozenset(
    [
        ("gopher_quality", c)
        for c in ("word_count", "word_count_max", "mean_word_length", "symbol_word_ratio", "alpha_words")
    ]
    + [("gopher_quality", "stop_words"), ("fineweb", "list_ratio"), ("fineweb", "short_line_ratio")]
    + [("gopher_repetition", f"top_{n}gram") for n in _TOP_NS]
    + [("gopher_repetition", f"dup_{n}gram") for n in _DUP_NS]
)
_PUNCT_CHECKS = frozenset({("c4", "terminal_punct"), ("fineweb", "line_punct_ratio")})


def applies(rule: str, check: str, lang: str) -> bool:
    """Whether a check's thresholds fit text in ``lang`` (see the module docstring).

    Args:
        rule: rule name, e.g. ``gopher_quality``.
        check: check name within the rule, e.g. ``stop_words``.
        lang: the document's language as the clean stage labels it (``unknown`` gets every check).
    """
    if (rule, check) in _SPACED_CHECKS and lang in UNSPACED_LANGS:
        return False
    if (rule, check) in _PUNCT_CHECKS and lang in UNPUNCTUATED_LANGS:
        return False
    if (rule, check) == ("gopher_quality", "stop_words") and lang not in STOP_WORDS:
        return lang == "unknown"
    return True


def skipped_checks(rules: Sequence[tuple[str, Mapping]], lang: str) -> list[str]:
    """The ``rule:check`` reasons of the rules' enabled checks that ``evaluate`` skips for ``lang``."""
    zero = dict.fromkeys((s.name for s in SIGNALS), 0.0)
    return [
        c.reason
        for name, params in rules
        for c in RULES[name](zero, params)
        if not applies(name, c.check, lang)
    ]


def evaluate(
    signals: Mapping[str, float], rules: Sequence[tuple[str, Mapping]], lang: str = "en"
) -> Check | None:
    """The first failing check, in rule order then check order, or None when the document passes.

    Args:
        signals: ``compute_signals`` output for one document.
        rules: ordered ``(rule_name, params)`` pairs, e.g. ``DEFAULT_RULES`` or ``validate_rules`` output;
            params missing a key fall back to the rule's default.
        lang: the document's language; checks that do not fit it are skipped (``applies``).
    """
    for name, params in rules:
        rule = RULES.get(name)
        if rule is None:
            raise ValueError(f"unknown quality rule {name!r}; known rules: {', '.join(RULES)}")
        for check in rule(signals, params):
            if not check.passed and applies(name, check.check, lang):
                return check
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_param(rule: str, key: str, value: Any) -> Any:
    where = f"param {key!r} of quality rule {rule!r}"
    default = _DEFAULTS[rule][key]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where} must be true or false, got {value!r}")
        return value
    if key in _NGRAM_PARAMS:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"{where} must map n to a threshold, got {value!r}")
        allowed = _NGRAM_PARAMS[key]
        out = {}
        for n, thr in value.items():
            try:
                size = int(n)
            except (TypeError, ValueError):
                size = None
            if size not in allowed or isinstance(n, bool) or (isinstance(n, float) and n != size):
                raise ValueError(f"{where}: n={n!r} is not one of {', '.join(map(str, allowed))}")
            if not (thr is None or _number(thr)):
                raise ValueError(f"{where}: threshold for n={size} must be a number or null, got {thr!r}")
            out[size] = thr
        return dict(sorted(out.items()))
    if not (value is None or _number(value)):
        raise ValueError(f"{where} must be a number or null (null disables it), got {value!r}")
    return value


def validate_rules(rules: Sequence[tuple[str, Mapping | None]]) -> list[tuple[str, dict]]:
    """Checks rule names and params and fills in the defaults.

    Args:
        rules: ordered ``(rule_name, params)`` pairs from the profile; params override the rule's defaults key
            by key (``top_n_grams`` / ``dup_n_grams`` as whole mappings, whose keys may be strings).

    Returns:
        The same rules in the same order, each with a complete params dict of its own.

    Raises:
        ValueError: naming an unknown rule or param (listing the known ones), or a param of the wrong type.
    """
    out = []
    for name, params in rules:
        if name not in RULES:
            raise ValueError(f"unknown quality rule {name!r}; known rules: {', '.join(RULES)}")
        if params is not None and not isinstance(params, Mapping):
            raise ValueError(f"params of quality rule {name!r} must be a mapping, got {params!r}")
        defaults = _DEFAULTS[name]
        merged = {k: dict(v) if isinstance(v, dict) else v for k, v in defaults.items()}
        for key, value in (params or {}).items():
            if key not in defaults:
                raise ValueError(
                    f"unknown param {key!r} for quality rule {name!r}; known params: {', '.join(defaults)}"
                )
            merged[key] = _check_param(name, key, value)
        out.append((name, merged))
    return out
