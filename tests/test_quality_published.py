"""The published rule definitions on crafted documents: spaCy-style words and sentences (checked against
spaCy itself), datatrove's Gopher and FineWeb signals, the C4 line filter, and ``judge`` chaining them."""

from __future__ import annotations

import pandas as pd
import pytest
import spacy

from udfs.analyze import Analyze
from udfs.c4 import DEFAULTS as C4
from udfs.c4 import c4_lines
from udfs.quality import LazySignals, compute_signals
from udfs.quality_rules import DEFAULT_RULES, Check, evaluate, judge, skipped_checks, validate_rules
from udfs.words import count_sentences, line_tokens, word_tokens

TRICKY = (
    "\"Don't panic,\" Mr. Smith said at 5km/h... e.g. www.example.com/a?b. DON'T (yes)! I'm here :) U.S. "
    "rate 3.5% - done. ABC. A. end.Next well-known 10-20"
)
# Five sentences on one line, every default rule passes: the base of the C4 tests.
PROSE = (
    "The river town grew slowly over two centuries, shaped by trade and floods. Farmers brought grain to "
    "the market each autumn. Merchants carried it downstream on flat boats. When the railway arrived, the "
    "old docks emptied. Today visitors walk along the restored quay and read the plaques."
)

MORE = (
    "A new bridge opened in the spring of that year. Children crossed it to reach the school on the hill. "
    "The mayor planted an oak beside the bridge. Its branches now shade the benches by the water. Every "
    "summer the town holds a fair under that tree."
)


def approx(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


@pytest.fixture(scope="module")
def nlp():
    # datatrove's English tokenizer: spaCy's blank English pipeline with the rule-based sentencizer.
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def test_words_are_spacy_english_tokens(nlp):
    assert word_tokens(TRICKY) == [
        '"', "Do", "n't", "panic", ",", '"', "Mr.", "Smith", "said", "at", "5", "km/h", "...", "e.g.",
        "www.example.com/a?b", ".", "DON'T", "(", "yes", ")", "!", "I", "'m", "here", ":)", "U.S.", "rate",
        "3.5", "%", "-", "done", ".", "ABC", ".", "A.", "end", ".", "Next", "well", "-", "known", "10", "-",
        "20",
    ]  # fmt: skip
    for text in (TRICKY, PROSE, "cannot dont Id've… (e.g., km/h.) $5 £3 #tag ->x <3 C++ ... !!"):
        assert word_tokens(text) == [t.text for t in nlp.tokenizer(text) if t.text.strip()], text


@pytest.mark.parametrize(
    ("line", "n"),
    [
        ("He left. She stayed! Why? Mr. Smith came.", 4),
        ('The U.S. team won 3.5 points... and then "Yes." he said', 2),
        ("One sentence only", 1),
        ("Wait... really? Yes!", 2),
        ("", 0),
    ],
)
def test_sentences_as_the_sentencizer_counts_them(nlp, line, n):
    assert count_sentences(line) == n == len(list(nlp(line).sents))


def test_gopher_quality_published_signals():
    # 7 tokens: # x y # ... z …  ("..." and "…" are tokens of their own); 3 of them are words.
    s = compute_signals("# x y # ... z …")
    assert s["gopher_hash_to_word_ratio"] == approx(2 / 7)
    assert s["gopher_ellipsis_to_word_ratio"] == approx(2 / 7)
    assert s["gopher_word_count"] == 3.0  # x, y, z: "#", "...", "…" are symbols only
    # The combined RedPajama ratio: 4 symbols per 7 whitespace words.
    assert s["rps_doc_symbol_to_word_ratio"] == approx(4 / 7)
    # Bullets are • and - only, over every line of str.splitlines(), blank ones included.
    s = compute_signals("• one\n- two\n* three\n\nfour...")
    assert s["gopher_frac_lines_start_with_bullet"] == approx(2 / 5)
    assert s["rps_doc_frac_lines_start_with_bullet"] == approx(3 / 4)
    assert s["gopher_frac_lines_end_with_ellipsis"] == approx(1 / 5)
    # Stop words: distinct and case-sensitive ("The" is not "the"); punctuation tokens count as words
    # without letters: 4 of 10 tokens ("," "," "." "3").
    s = compute_signals("The cat, the dog, and the 3 birds.")
    assert s["gopher_distinct_stop_words"] == 2.0 and s["gopher_stop_word_count"] == 4.0
    assert s["gopher_frac_no_alpha_words"] == approx(4 / 11)


def test_gopher_repetition_published_signals():
    text = "a b c d e a b c d e f"
    s = compute_signals(text)
    # Top 2-gram "a b" (3 characters joined) twice, over all 21 characters.
    assert s["gopher_frac_chars_top_2gram"] == approx(6 / 21)
    # Only the later "a b c d e" counts (5 characters), where RedPajama counts both occurrences.
    assert s["gopher_frac_chars_dupe_5grams"] == approx(5 / 21)
    assert s["rps_doc_frac_chars_dupe_5grams"] == approx(10 / 11)
    # A unique n-gram is still the top one, as in datatrove: "a b" once, in 3 characters.
    assert compute_signals("a b")["gopher_frac_chars_top_2gram"] == approx(3 / 3)
    s = compute_signals("x y\nx y\n\nz")
    assert (s["gopher_frac_dup_lines"], s["gopher_frac_dup_paragraphs"]) == (approx(1 / 3), 0.0)
    assert s["gopher_frac_dup_line_chars"] == approx(3 / 10)


def test_fineweb_published_line_ends_and_tokens():
    s = compute_signals("He said “yes”\nShe said 'no'\nNothing\nDone.")
    assert s["fineweb_frac_lines_end_with_punct"] == approx(2 / 4)  # ” is not a FineWeb line end
    assert s["fineweb_line_punct_ratio"] == approx(3 / 4)  # the earlier definition counts it
    # 3 newlines per 13 tokens (the quotes and the period are tokens) against 3 per 8 words.
    assert s["fineweb_newlines_per_token"] == approx(3 / 13)
    assert s["fineweb_list_ratio"] == approx(3 / 8)


def test_c4_lines_removes_lines_and_keeps_the_rest():
    text = (
        "Site title\n"
        f"{PROSE}\n"
        "Please enable JavaScript to see the comments.\n"
        "See our privacy policy for details.\n"
        "Short line.\n"
        "An ellipsis ends this one...\n"
        "This line ends with a citation.[12]\n"
        "\n"
        "Thanks for reading!"
    )
    out = c4_lines(text, C4, lambda check: True)
    assert out.text == f"{PROSE}\nThis line ends with a citation.\nThanks for reading!"
    # title, javascript, policy, short, ellipsis: the blank line is not counted.
    assert (out.removed_lines, out.sentences, out.check) == (5, 7, None)


def test_c4_lines_drops_documents():
    keep_all = lambda check: True  # noqa: E731
    # Lorem ipsum or a curly bracket in a kept line drops the document; in a removed line it does not.
    assert c4_lines(f"{PROSE}\nLorem ipsum dolor sit amet.", C4, keep_all).check == "lorem_ipsum"
    assert c4_lines(f"{PROSE}\nLorem ipsum", C4, keep_all).check is None
    assert c4_lines(f"{PROSE}\nUse {{braces}} with care.", C4, keep_all).check == "curly_bracket"
    assert c4_lines(f"{PROSE}\nfunction f() {{", C4, keep_all).check is None
    out = c4_lines("One. Two is here. Three is here.\nNo end", C4, keep_all)
    assert (out.check, out.value, out.removed_lines) == ("sentences", 3.0, 1)
    # Off by params: 3 sentences are enough, and curly brackets stay.
    params = {**C4, "min_num_sentences": 3, "filter_curly_bracket": False}
    assert c4_lines("One. Two is here. Three {x} is here.", params, keep_all).check is None
    # Sentence ends of other scripts count unless other_scripts is off.
    line = "これは日本語の文です。"
    ja = {**C4, "min_num_sentences": None, "min_words_per_line": None}
    assert c4_lines(line, ja, keep_all).check is None
    # Without them the line goes, and a document left without text is dropped, never kept empty.
    assert c4_lines(line, {**ja, "other_scripts": False}, keep_all).check == "sentences"


def test_one_tokenization_serves_every_rule():
    # Every line break str.splitlines knows is whitespace: the lines' tokens are the text's.
    text = f"{TRICKY}\r\nSee [1] the note.[2]\x0bnext\u2028line\x85end\n\n{PROSE}"
    assert [t for line in line_tokens(text) for t in line] == word_tokens(text)
    # C4 given the lines' tokens decides as without them, and hands on the tokens of the text it leaves,
    # the cited line's tokenized again after its citation is cut.
    cited = f"{PROSE}\nThis line ends with a citation.[12]\nShort line.\n{MORE}"
    keep_all = lambda check: True  # noqa: E731
    alone = c4_lines(cited, C4, keep_all)
    shared = c4_lines(cited, C4, keep_all, line_tokens=line_tokens(cited))
    assert (shared.text, shared.removed_lines, shared.sentences) == (alone.text, 1, alone.sentences)
    assert shared.tokens == word_tokens(shared.text) and alone.tokens == shared.tokens
    # The lazy signals are compute_signals', half by half.
    lazy = LazySignals(text, "de", word_tokens(text))
    assert lazy["gopher_word_count"] == compute_signals(text, "de")["gopher_word_count"]
    assert lazy._other is None  # a published name computes only its half
    assert dict(lazy) == compute_signals(text, "de")


def test_judge_runs_the_later_rules_on_the_lines_c4_leaves():
    text = f"Menu\nHome\nShop\nBlog\n{PROSE}"
    fineweb = [("fineweb", {})]
    # FineWeb alone: 4 of 5 lines are short.
    assert evaluate(compute_signals(text), fineweb).reason == "fineweb:short_line_ratio"
    # After c4_lines, FineWeb judges the prose line alone, and the signals describe it.
    verdict = judge(text, validate_rules([("c4_lines", {}), *fineweb]))
    assert (verdict.check, verdict.text) == (None, PROSE)
    assert verdict.signals == {**compute_signals(PROSE), "c4_removed_lines": 4.0}
    verdict = judge(text, validate_rules([*fineweb, ("c4_lines", {})]))
    assert verdict.check == Check("fineweb", "short_line_ratio", 0.8, False) and verdict.text == text
    with pytest.raises(ValueError, match="'c4_lines' removes lines: judge the text"):
        evaluate(compute_signals(text), DEFAULT_RULES)


def test_published_checks_by_language():
    words = ["word_count", "word_count_max", "mean_word_length", "hash_word_ratio", "ellipsis_word_ratio"]
    words = [f"gopher_quality:{c}" for c in (*words, "alpha_words", "stop_words")]
    ngrams = [f"gopher_repetition:top_{n}gram" for n in (2, 3, 4)]
    ngrams += [f"gopher_repetition:dup_{n}gram" for n in range(5, 11)]
    fineweb = ["fineweb:short_line_ratio", "fineweb:list_ratio"]
    assert skipped_checks(DEFAULT_RULES, "en") == []
    assert skipped_checks(DEFAULT_RULES, "ja") == [*words, *ngrams, "c4_lines:min_words", *fineweb]
    c4 = ["c4_lines:terminal_punct", "c4_lines:min_words", "c4_lines:sentences"]
    assert skipped_checks(DEFAULT_RULES, "th") == [*words, *ngrams, *c4, "fineweb:line_punct_ratio", *fineweb]


def test_analyze_keeps_the_text_c4_leaves():
    step = Analyze(["en"], 0.5, DEFAULT_RULES)
    prose = f"{PROSE} {MORE}"
    docs = pd.DataFrame({"text": [f"Menu\n{prose}", "Menu\nHome\nToo short a text, with two. Sentences."]})
    got = step(docs)
    assert list(got["norm_text"]) == [prose, "Menu\nHome\nToo short a text, with two. Sentences."]
    # The short one leaves at the Gopher word count, before c4_lines runs.
    assert list(got["c4_removed_lines"]) == [1.0, 0.0]
    assert [None if pd.isna(r) else r for r in got["drop_reason"]] == [None, "gopher_quality:word_count"]
