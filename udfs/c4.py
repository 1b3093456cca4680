"""The published C4 filter (Raffel et al. 2020, section 2.2), line by line, as TFDS ``c4_utils.clean_page``
and datatrove's ``C4QualityFilter`` apply it. Pure Python, no Spark.

Each line (``str.splitlines``, stripped) is removed when, in this order, it has a whitespace word longer than
``max_word_length`` characters, does not end in terminal punctuation (``. ? ! " '``; a trailing ``...`` does
not count) once Wikipedia-style citations (``[1]``, ``[edit]``, ``[citation needed]``) are cut out, has fewer
than ``min_words_per_line`` whitespace words, mentions ``javascript``, or names a cookie or terms-of-use
policy. A kept line that contains ``lorem ipsum`` or a curly bracket drops the whole document, and so do
fewer than ``min_num_sentences`` sentences in the kept lines (``udfs.words.count_sentences``, spaCy's
sentencizer as datatrove uses it). The document's text becomes its kept lines joined by newlines.

Languages (``udfs.quality_rules.applies``): sentence ends of other scripts (``。！？``, danda, …) count as
terminal punctuation unless ``other_scripts`` is false; the words-per-line check is skipped for languages
written without spaces (sentences are then counted by their end marks), and the terminal punctuation and
sentence checks for languages that do not mark sentence ends (th, lo).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import regex

from udfs.words import count_sentences, word_tokens

RULE = "c4_lines"
DEFAULTS: dict = {
    "remove_citations": True,
    "filter_no_terminal_punct": True,
    "min_num_sentences": 5,
    "min_words_per_line": 3,
    "max_word_length": 1000,
    "filter_lorem_ipsum": True,
    "filter_javascript": True,
    "filter_curly_bracket": True,
    "filter_policy": True,
    "other_scripts": True,
}
# Check names: what removes a line, then what drops the document (silver.filtered's c4_lines:<check>).
LINE_CHECKS = ("max_word_length", "terminal_punct", "min_words", "javascript", "policy")
DOC_CHECKS = ("lorem_ipsum", "curly_bracket", "sentences")

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_END = (".", "?", "!", '"', "'")
# The same sentence ends of other scripts that udfs.quality counts for the other rules.
_OTHER_END = ("。", "．", "｡", "！", "？", "」", "』", "।", "॥", "؟", "۔", "։", "።", "။", "។")
_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_UNSPACED_SENTENCE_END = regex.compile(r"\p{Sentence_Terminal}+")
_HAS_CONTENT = regex.compile(r"[\p{L}\p{N}]")


@dataclass(frozen=True)
class C4Lines:
    """What ``c4_lines`` made of one document.

    Attributes:
        text: the kept lines joined by newlines (the input text when the document is dropped).
        removed_lines: non-empty lines removed (blank lines between paragraphs are not counted).
        sentences: sentences in the kept lines (0 when the sentence check is off or skipped).
        check: the check that dropped the document, or None.
        value: that check's value: 1.0 for lorem ipsum and curly brackets, the sentence count otherwise.
        tokens: ``udfs.words.word_tokens(text)`` of a kept text, from the kept lines' tokens; None when the
            call was not given ``line_tokens`` and had no need to tokenize every kept line.
    """

    text: str
    removed_lines: int
    sentences: int
    check: str | None = None
    value: float = 0.0
    tokens: list[str] | None = None


def enabled_checks(params: Mapping) -> list[str]:
    """The checks ``params`` turns on, line checks first (what ``skipped_checks`` lists)."""
    on = {
        "max_word_length": params["max_word_length"] is not None,
        "terminal_punct": params["filter_no_terminal_punct"],
        "min_words": params["min_words_per_line"] is not None,
        "javascript": params["filter_javascript"],
        "policy": params["filter_policy"],
        "lorem_ipsum": params["filter_lorem_ipsum"],
        "curly_bracket": params["filter_curly_bracket"],
        "sentences": params["min_num_sentences"] is not None,
    }
    return [c for c in (*LINE_CHECKS, *DOC_CHECKS) if on[c]]


def _unspaced_sentences(text: str) -> int:
    return sum(1 for part in _UNSPACED_SENTENCE_END.split(text) if _HAS_CONTENT.search(part))


def c4_lines(
    text: str,
    params: Mapping,
    applies: Callable[[str], bool],
    unspaced: bool = False,
    line_tokens: list[list[str]] | None = None,
) -> C4Lines:
    """The C4 line filter on one document.

    Args:
        text: the normalized document text.
        params: every key of ``DEFAULTS`` (``validate_rules`` fills them in); None disables a number's check.
        applies: whether a check fits the document's language (``udfs.quality_rules.applies`` bound to it).
        unspaced: the language is written without spaces: sentences are counted by their end marks.
        line_tokens: ``udfs.words.line_tokens(text)`` when the caller has them: a line that citation removal
            leaves as it was is not tokenized again, and the result carries the kept text's ``tokens``.
    """
    p = params
    ends = _END + _OTHER_END if p["other_scripts"] else _END
    max_len = p["max_word_length"] if applies("max_word_length") else None
    punct = p["filter_no_terminal_punct"] and applies("terminal_punct")
    min_words = p["min_words_per_line"] if applies("min_words") else None
    min_sentences = p["min_num_sentences"] if applies("sentences") else None
    kept: list[str] = []
    # The kept lines' tokens, while every kept line has them (the sentence count or the caller's).
    tokens: list[str] | None = []
    removed = sentences = 0
    for i, raw in enumerate(text.splitlines()):
        line = raw.strip()
        if not line:
            continue
        before = line
        words = line.split()
        if max_len is not None and any(len(w) > max_len for w in words):
            removed += 1
            continue
        if p["remove_citations"]:
            line = _CITATION.sub("", line)
        if punct and (not line.endswith(ends) or line.endswith("...")):
            removed += 1
            continue
        # Whitespace words counted before citations are cut, as datatrove does.
        if min_words is not None and len(words) < min_words:
            removed += 1
            continue
        low = line.lower()
        if p["filter_lorem_ipsum"] and "lorem ipsum" in low:
            return C4Lines(text, removed, sentences, "lorem_ipsum", 1.0)
        if p["filter_javascript"] and "javascript" in low:
            removed += 1
            continue
        if p["filter_curly_bracket"] and "{" in line:
            return C4Lines(text, removed, sentences, "curly_bracket", 1.0)
        if p["filter_policy"] and any(s in low for s in _POLICY):
            removed += 1
            continue
        # Stripping a line or joining lines by newlines changes no whitespace-separated chunk, so the line's
        # tokens are the caller's unless citation removal changed it.
        words_of = line_tokens[i] if line_tokens is not None and line == before else None
        if words_of is None and (line_tokens is not None or (min_sentences is not None and not unspaced)):
            words_of = word_tokens(line)
        if min_sentences is not None:
            sentences += _unspaced_sentences(line) if unspaced else count_sentences(line, words_of)
        if words_of is None:
            tokens = None
        elif tokens is not None:
            tokens += words_of
        kept.append(line)
    out = "\n".join(kept).strip()
    if min_sentences is not None and sentences < min_sentences:
        return C4Lines(text, removed, sentences, "sentences", float(sentences))
    if not out:
        # Only reachable with the sentence check off: nothing may reach silver without text.
        return C4Lines(text, removed, sentences, "sentences", 0.0)
    return C4Lines(out, removed, sentences, tokens=tokens)
