"""Rule verdicts on the quality signals: the Gopher (quality and repetition), C4 and FineWeb rules as
datatrove publishes them, and the project's earlier variants as options. ``judge`` runs an ordered rule list
on one text and returns the first failing check, the reason a document is dropped. Pure Python, no Spark.

Rules: ``gopher_quality``, ``gopher_repetition`` and ``fineweb`` read datatrove's definitions
(``udfs.quality_published``) unless their ``definitions`` param is ``corpuslake`` (the RedPajama-style
signals of ``udfs.quality``: one combined ``#``-and-ellipsis ratio, 8 bullet characters, ``”`` as a
FineWeb line end, whitespace words). ``c4_lines`` is the published C4 filter (``udfs.c4``): it removes lines,
and the rules after it judge the remaining text. ``c4_doc`` is the project's earlier document-level
reading of C4, with thresholds of its own (no line removal).

Languages: some checks assume what English text looks like, and ``judge`` skips them for a document in a
language where that does not hold (``applies``): checks on whitespace words (counts, lengths, stop words, word
n-grams, newlines per word, words per C4 line) and on short lines for languages written without spaces
between words (``UNSPACED_LANGS``: ja, zh, th, lo, km, my), the stop-word check for languages without a
stop-word list, terminal punctuation (and C4's sentence count) for languages that do not mark sentence ends
(th, lo). ``skipped_checks`` lists them for the clean stage's startup warning. English and ``unknown``
documents get every check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from schemas.signals import DUP_NS, SIGNALS, TOP_NS
from udfs import c4 as c4_filter
from udfs.quality import STOP_WORDS, UNPUNCTUATED_LANGS, UNSPACED_LANGS, LazySignals
from udfs.words import line_tokens


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


# The published settings (datatrove, which follows the papers), in the order the clean stage applies them.
DEFAULT_RULES: tuple[tuple[str, dict], ...] = (
    (
        "gopher_quality",
        {
            "definitions": "published",
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
            "definitions": "published",
            "dup_line_frac": 0.3,
            "dup_para_frac": 0.3,
            "dup_line_char_frac": 0.2,
            "dup_para_char_frac": 0.2,
            "top_n_grams": {2: 0.2, 3: 0.18, 4: 0.16},
            "dup_n_grams": {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        },
    ),
    ("c4_lines", dict(c4_filter.DEFAULTS)),
    (
        "fineweb",
        {
            "definitions": "published",
            "line_punct_thr": 0.12,
            "short_line_thr": 0.67,
            "char_duplicates_ratio": 0.01,
            "new_line_ratio": 0.3,
        },
    ),
)
# Not in the default list: the earlier document-level reading of C4. Its thresholds are not the paper's
# (C4 removes lines; it has no line-share or line-count thresholds), and it leaves curly brackets alone.
OTHER_RULES: tuple[tuple[str, dict], ...] = (
    (
        "c4_doc",
        {
            "min_frac_lines_end_with_punct": 0.2,
            "filter_lorem_ipsum": True,
            "max_javascript_lines": 2,
            "max_policy_lines": 2,
            "filter_curly_bracket": False,
        },
    ),
)
_DEFAULTS: dict[str, dict] = dict(DEFAULT_RULES + OTHER_RULES)
_NGRAM_PARAMS = {"top_n_grams": TOP_NS, "dup_n_grams": DUP_NS}
_CHOICES = {"definitions": ("published", "corpuslake")}
# Rules that read the text, not the signals: they may change it.
LINE_RULES = frozenset({c4_filter.RULE})
RENAMED = {"c4": "c4_doc (the document-level variant) or c4_lines (the published line filter)"}


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


def _published(p: Mapping) -> bool:
    return p["definitions"] == "published"


def gopher_quality(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """Gopher quality checks (Rae et al. 2021; datatrove ``GopherQualityFilter``).

    Args:
        signals: ``compute_signals`` output.
        params: overrides for ``DEFAULT_RULES["gopher_quality"]``; None disables a threshold.
            ``definitions: corpuslake`` reads the RedPajama-style signals, with one ``symbol_word_ratio``
            check on ``#`` and ellipses together where the published rule has two.
    """
    p, r, s, out = _params("gopher_quality", params), "gopher_quality", signals, []
    pub = _published(p)
    words, mean = ("gopher_word_count", "gopher_mean_word_length") if pub else _RPS_WORDS
    _bound(out, r, "word_count", s[words], lo=p["min_words"])
    _bound(out, r, "word_count_max", s[words], hi=p["max_words"])
    _bound(out, r, "mean_word_length", s[mean], lo=p["min_mean_word_length"], hi=p["max_mean_word_length"])
    if pub:
        _bound(out, r, "hash_word_ratio", s["gopher_hash_to_word_ratio"], hi=p["max_symbol_word_ratio"])
        _bound(
            out, r, "ellipsis_word_ratio", s["gopher_ellipsis_to_word_ratio"], hi=p["max_symbol_word_ratio"]
        )
    else:
        _bound(out, r, "symbol_word_ratio", s["rps_doc_symbol_to_word_ratio"], hi=p["max_symbol_word_ratio"])
    prefix = "gopher_frac" if pub else "rps_doc_frac"
    _bound(out, r, "bullet_lines", s[f"{prefix}_lines_start_with_bullet"], hi=p["max_bullet_lines_ratio"])
    _bound(out, r, "ellipsis_lines", s[f"{prefix}_lines_end_with_ellipsis"], hi=p["max_ellipsis_lines_ratio"])
    alpha = "gopher_frac_no_alpha_words" if pub else "rps_doc_frac_no_alph_words"
    _bound(out, r, "alpha_words", s[alpha], hi=p["max_non_alpha_words_ratio"])
    stop = "gopher_distinct_stop_words" if pub else "gopher_stop_word_count"
    _bound(out, r, "stop_words", s[stop], lo=p["min_stop_words"])
    return out


_RPS_WORDS = ("rps_doc_word_count", "rps_doc_mean_word_length")
# Repetition signal names: (published, corpuslake) per check.
_REPETITION = {
    "dup_line_frac": ("gopher_frac_dup_lines", "rps_doc_frac_dup_lines"),
    "dup_para_frac": ("gopher_frac_dup_paragraphs", "rps_doc_frac_dup_paragraphs"),
    "dup_line_char_frac": ("gopher_frac_dup_line_chars", "rps_doc_frac_dup_line_chars"),
    "dup_para_char_frac": ("gopher_frac_dup_paragraph_chars", "rps_doc_frac_dup_paragraph_chars"),
}


def gopher_repetition(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """Gopher repetition checks (Rae et al. 2021; datatrove ``GopherRepetitionFilter``).

    Args:
        signals: ``compute_signals`` output.
        params: overrides for ``DEFAULT_RULES["gopher_repetition"]``. ``top_n_grams`` (n in 2..4)
            and ``dup_n_grams`` (n in 5..10) replace the whole default mapping; leave an n out to skip it.
            ``definitions: corpuslake`` reads the RedPajama-style signals (every occurrence of a repeated
            n-gram counted, fractions of line or word characters).
    """
    p, r, s, out = _params("gopher_repetition", params), "gopher_repetition", signals, []
    pub = _published(p)
    for check, names in _REPETITION.items():
        _bound(out, r, check, s[names[0 if pub else 1]], hi=p[check])
    prefix = "gopher" if pub else "rps_doc"
    for n, thr in _ngram_items(p["top_n_grams"]):
        _bound(out, r, f"top_{n}gram", s[f"{prefix}_frac_chars_top_{n}gram"], hi=thr)
    for n, thr in _ngram_items(p["dup_n_grams"]):
        _bound(out, r, f"dup_{n}gram", s[f"{prefix}_frac_chars_dupe_{n}grams"], hi=thr)
    return out


def c4_doc(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """The project's earlier document-level reading of C4 (Raffel et al. 2020): thresholds on line counts
    where C4 removes lines (``c4_lines`` is the published filter).

    Args:
        signals: ``compute_signals`` output.
        params: overrides for ``OTHER_RULES["c4_doc"]``; the ``filter_*`` flags turn checks on or off.
    """
    p, r, s, out = _params("c4_doc", params), "c4_doc", signals, []
    _bound(out, r, "terminal_punct", s["c4_frac_lines_end_with_punct"], lo=p["min_frac_lines_end_with_punct"])
    _flag(out, r, "lorem_ipsum", s["rps_doc_lorem_ipsum"], p["filter_lorem_ipsum"])
    _bound(out, r, "javascript", s["rps_lines_javascript_counts"], hi=p["max_javascript_lines"])
    _bound(out, r, "policy", s["c4_policy_line_count"], hi=p["max_policy_lines"])
    _flag(out, r, "curly_bracket", s["rps_doc_curly_bracket"], p["filter_curly_bracket"])
    return out


def fineweb(signals: Mapping[str, float], params: Mapping | None = None) -> list[Check]:
    """FineWeb quality checks (Penedo et al. 2024; datatrove ``FineWebQualityFilter`` with FineWeb's line
    ends ``. ' " ! ?``).

    Args:
        signals: ``compute_signals`` output.
        params: overrides for ``DEFAULT_RULES["fineweb"]``; None disables a threshold.
            ``definitions: corpuslake`` also counts ``”`` as a line end and divides newlines by whitespace
            words.
    """
    p, r, s, out = _params("fineweb", params), "fineweb", signals, []
    pub = _published(p)
    punct = "fineweb_frac_lines_end_with_punct" if pub else "fineweb_line_punct_ratio"
    _bound(out, r, "line_punct_ratio", s[punct], lo=p["line_punct_thr"])
    _bound(out, r, "short_line_ratio", s["fineweb_short_line_ratio"], hi=p["short_line_thr"])
    _bound(out, r, "char_dup_ratio", s["fineweb_char_dup_ratio"], hi=p["char_duplicates_ratio"])
    lists = "fineweb_newlines_per_token" if pub else "fineweb_list_ratio"
    _bound(out, r, "list_ratio", s[lists], hi=p["new_line_ratio"])
    return out


# The rules that judge signals; c4_lines (LINE_RULES) judges the text in ``judge``.
RULES: dict[str, Callable[[dict[str, float], dict], list[Check]]] = {
    "gopher_quality": gopher_quality,
    "gopher_repetition": gopher_repetition,
    "fineweb": fineweb,
    "c4_doc": c4_doc,
}
KNOWN_RULES = ("gopher_quality", "gopher_repetition", "c4_lines", "fineweb", "c4_doc")


# Checks on whitespace words, and the short-line check, whose 30 characters are some 6 English words but a
# whole sentence in Chinese or Japanese: none fits a language written without spaces.
_WORD_CHECKS = ("word_count", "word_count_max", "mean_word_length", "alpha_words", "stop_words")
_SPACED_CHECKS = frozenset(
    [("gopher_quality", c) for c in (*_WORD_CHECKS, "symbol_word_ratio", "hash_word_ratio")]
    + [("gopher_quality", "ellipsis_word_ratio"), ("c4_lines", "min_words")]
    + [("fineweb", "list_ratio"), ("fineweb", "short_line_ratio")]
    + [("gopher_repetition", f"top_{n}gram") for n in TOP_NS]
    + [("gopher_repetition", f"dup_{n}gram") for n in DUP_NS]
)
_PUNCT_CHECKS = frozenset(
    {
        ("c4_doc", "terminal_punct"),
        ("c4_lines", "terminal_punct"),
        ("c4_lines", "sentences"),
        ("fineweb", "line_punct_ratio"),
    }
)


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


def _checks(name: str, params: Mapping) -> list[str]:
    if name in LINE_RULES:
        return c4_filter.enabled_checks(_params(name, params))
    zero = dict.fromkeys((s.name for s in SIGNALS), 0.0)
    return [c.check for c in RULES[name](zero, params)]


def skipped_checks(rules: Sequence[tuple[str, Mapping]], lang: str) -> list[str]:
    """The ``rule:check`` reasons of the rules' enabled checks that ``judge`` skips for ``lang``."""
    return [
        f"{name}:{check}"
        for name, params in rules
        for check in _checks(name, params)
        if not applies(name, check, lang)
    ]


def _unknown(name: str) -> ValueError:
    hint = f" ({name!r} is now {RENAMED[name]})" if name in RENAMED else ""
    return ValueError(f"unknown quality rule {name!r}{hint}; known rules: {', '.join(KNOWN_RULES)}")


def evaluate(
    signals: Mapping[str, float], rules: Sequence[tuple[str, Mapping]], lang: str = "en"
) -> Check | None:
    """The first failing check of rules that judge signals, in rule order then check order, or None when
    the document passes. ``c4_lines`` needs the text: ``judge`` runs it.

    Args:
        signals: ``compute_signals`` output for one document.
        rules: ordered ``(rule_name, params)`` pairs, e.g. ``validate_rules`` output; params missing a key
            fall back to the rule's default.
        lang: the document's language; checks that do not fit it are skipped (``applies``).
    """
    for name, params in rules:
        if name in LINE_RULES:
            raise ValueError(f"quality rule {name!r} removes lines: judge the text with judge()")
        rule = RULES.get(name)
        if rule is None:
            raise _unknown(name)
        for check in rule(signals, params):
            if not check.passed and applies(name, check.check, lang):
                return check
    return None


@dataclass(frozen=True)
class Verdict:
    """What the rules made of one document.

    Attributes:
        text: the text after the rules (``c4_lines`` removes lines); silver carries it.
        signals: ``compute_signals`` of the text the last rule judged, with ``c4_removed_lines`` set.
        check: the first failing check, or None when the document passes.
    """

    text: str
    signals: dict[str, float]
    check: Check | None


def judge(text: str, rules: Sequence[tuple[str, Mapping]], lang: str = "en") -> Verdict:
    """Runs the ordered rules on one document: signal rules judge the signals of the current text,
    ``c4_lines`` removes lines (the rules after it judge what is left, on signals computed again).

    Args:
        text: the normalized document text.
        rules: ordered ``(rule_name, params)`` pairs, e.g. ``DEFAULT_RULES`` or ``validate_rules`` output.
        lang: the document's language: picks stop words, and checks that do not fit it are skipped.
    """
    # One tokenization per document: the lines' tokens feed C4's sentence count, and together (they are the
    # text's tokens) the published signals; C4's kept lines keep theirs for the signals of the text it leaves.
    by_line = line_tokens(text)
    # The rules before C4 read only some signals of a text C4 may then change: the rest are computed when
    # read (when a rule drops the document, for scores.quality).
    signals = LazySignals(text, lang, list(chain.from_iterable(by_line)))
    removed = 0
    for name, params in rules:
        if name not in LINE_RULES:
            if (check := evaluate(signals, [(name, params)], lang)) is not None:
                return Verdict(text, {**signals, "c4_removed_lines": float(removed)}, check)
            continue
        out = c4_filter.c4_lines(
            text,
            _params(name, params),
            lambda c, n=name: applies(n, c, lang),
            lang in UNSPACED_LANGS,
            by_line,
        )
        removed += out.removed_lines
        if out.check is not None:
            check = Check(name, out.check, out.value, False)
            return Verdict(text, {**signals, "c4_removed_lines": float(removed)}, check)
        if out.text != text:
            text, signals = out.text, LazySignals(out.text, lang, out.tokens)
            by_line = None  # a later line rule (rare) tokenizes the lines it needs itself
    return Verdict(text, {**signals, "c4_removed_lines": float(removed)}, None)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_param(rule: str, key: str, value: Any) -> Any:
    where = f"param {key!r} of quality rule {rule!r}"
    default = _DEFAULTS[rule][key]
    if key in _CHOICES:
        if value not in _CHOICES[key]:
            raise ValueError(f"{where} must be one of {', '.join(_CHOICES[key])}, got {value!r}")
        return value
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
        if name not in _DEFAULTS:
            raise _unknown(name)
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
