"""Rule verdicts on the quality signals: the Gopher (quality and repetition), C4 and FineWeb rules as
datatrove and RedPajama-V2 define them. ``evaluate`` returns the first failing check, the reason a document
is dropped. Pure Python, no Spark.

Languages: some checks assume what English text looks like, and ``evaluate`` skips them for a document in a
language where that does not hold (``applies``): checks on whitespace words (counts, lengths, stop words, word
n-grams, newlines per word) and on short lines for languages written without spaces between words
(``UNSPACED_LANGS``: ja, zh, th, lo, km, my), the stop-word check for languages without a stop-word list,
terminal punctuation for languages that do not mark sentence ends (th, lo). ``skipped_checks`` lists them for
the clean stage's startup warning. English and ``unknown`` documents get every check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from schemas.signals import DUP_NS, SIGNALS, TOP_NS
from udfs.quality import STOP_WORDS, UNPUNCTUATED_LANGS, UNSPACED_LANGS


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
_NGRAM_PARAMS = {"top_n_grams": TOP_NS, "dup_n_grams": DUP_NS}


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
    + [("gopher_repetition", f"top_{n}gram") for n in TOP_NS]
    + [("gopher_repetition", f"dup_{n}gram") for n in DUP_NS]
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
