"""The per-document quality signals of scores.quality: their names, ranges and descriptions.

The table schema (``schemas.scores.QUALITY``) and its expectation suite are built from ``SIGNALS``; the
executors compute the values (``udfs.quality.compute_signals``), and the rules judge them
(``udfs.quality_rules``). Plain data, so that both sides import it and ``schemas`` imports nothing of
``udfs``.
"""

from __future__ import annotations

from dataclasses import dataclass


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


# The n of the top n-gram and of the duplicate n-gram signals, and the short-line length.
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
SHORT_LINE_CHARS = 30


def _ngrams(prefix: str, top_hi, top: str, dupe: str) -> tuple[Signal, ...]:
    """The top (bounded by ``top_hi(n)``) and duplicate n-gram signals of one set of definitions."""
    return (
        *(Signal(f"{prefix}_frac_chars_top_{n}gram", 0.0, float(top_hi(n)), top.format(n=n)) for n in TOP_NS),
        *(Signal(f"{prefix}_frac_chars_dupe_{n}grams", 0.0, 1.0, dupe.format(n=n)) for n in DUP_NS),
    )


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
    # (n-grams - n + 1) overlapping occurrences of n tokens each can cover up to n times the characters.
    *_ngrams(
        "rps_doc",
        lambda n: n,
        "characters in the top word {n}-gram",
        "fraction of characters in repeated {n}-grams",
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
        f"lines of <= {SHORT_LINE_CHARS} characters, per non-empty line",
    ),
    Signal("fineweb_char_dup_ratio", 0.0, 1.0, "characters in repeated lines per non-newline character"),
    Signal("fineweb_list_ratio", 0.0, None, "newlines per word"),
    # The rules' default definitions: datatrove's (udfs/quality_published.py); the RedPajama-style ones above
    # are the `definitions: corpuslake` variant.
    Signal("gopher_word_count", 0.0, None, "words that are not only punctuation (spaCy-style tokens)"),
    Signal("gopher_mean_word_length", 0.0, None, "mean characters of those words"),
    Signal("gopher_hash_to_word_ratio", 0.0, None, "'#' occurrences per token"),
    Signal("gopher_ellipsis_to_word_ratio", 0.0, None, "'...' and '…' occurrences per token"),
    Signal("gopher_frac_lines_start_with_bullet", 0.0, 1.0, "lines starting with • or -, per line"),
    Signal("gopher_frac_lines_end_with_ellipsis", 0.0, 1.0, "lines ending with an ellipsis, per line"),
    Signal("gopher_frac_no_alpha_words", 0.0, 1.0, "fraction of tokens without an alphabetic character"),
    Signal("gopher_distinct_stop_words", 0.0, None, "distinct stop words among the tokens (case-sensitive)"),
    Signal("gopher_frac_dup_lines", 0.0, 1.0, "lines repeating an earlier line, per line"),
    Signal("gopher_frac_dup_paragraphs", 0.0, 1.0, "paragraphs repeating an earlier one, per paragraph"),
    Signal("gopher_frac_dup_line_chars", 0.0, 1.0, "characters in repeated lines per character"),
    Signal("gopher_frac_dup_paragraph_chars", 0.0, 1.0, "characters in repeated paragraphs per character"),
    # The top n-gram's space-joined length times its count: each character of the text is in at most n
    # occurrences, and each of those adds at most n - 1 spaces, which the text need not have ("end." is 2).
    *_ngrams(
        "gopher",
        lambda n: 2 * n - 1,
        "characters of the top token {n}-gram",
        "characters in later repeats of token {n}-grams",
    ),
    Signal("fineweb_frac_lines_end_with_punct", 0.0, 1.0, "lines ending in . ' \" ! ?, per non-empty line"),
    Signal("fineweb_newlines_per_token", 0.0, None, "newlines per token"),
    # Set by the rules: lines the c4_lines rule removed (0 when it is not among them or dropped nothing).
    Signal("c4_removed_lines", 0.0, None, "non-empty lines removed by the c4_lines rule"),
    # For Meta-rater
    Signal("rps_doc_frac_unique_words", 0.0, 1.0, "distinct n-gram tokens per token"),
    Signal("rps_doc_unigram_entropy", 0.0, None, "Shannon entropy (nats) of the token distribution"),
    Signal("rps_doc_frac_all_caps_words", 0.0, 1.0, "fraction of words that are all upper case"),
    Signal("rps_doc_num_lines", 0.0, None, "number of non-empty lines"),
    Signal("rps_doc_num_chars", 0.0, None, "number of characters"),
)
