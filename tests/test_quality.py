"""Quality signals on crafted documents whose values are worked out by hand, and the rule verdicts under the
earlier, RedPajama-style definitions (``definitions: corpuslake`` and ``c4_doc``); the published defaults are
tests/test_quality_published.py's."""

from __future__ import annotations

import math
import random
import string
from collections import Counter

import pytest

from udfs.quality import SIGNALS, compute_signals
from udfs.quality_rules import (
    DEFAULT_RULES,
    OTHER_RULES,
    RULES,
    Check,
    applies,
    evaluate,
    skipped_checks,
    validate_rules,
)

# 81 words on one line, every sentence ended, no repeated 2-gram: passes every default rule.
CLEAN = (
    "The river town grew slowly over two centuries, shaped by trade, floods and the patience of the "
    "families who stayed. Farmers brought grain to the market each autumn, and merchants carried it "
    "downstream on flat boats. When the railway arrived, the old docks emptied, yet the town adapted by "
    "turning warehouses into schools and workshops. Today visitors walk along the restored quay, read the "
    "plaques that describe each flood, and eat at small cafes that serve recipes handed down with care."
)
NAMES = [s.name for s in SIGNALS]
# The rules as they were the default before the published definitions: each an option now.
EARLIER = validate_rules(
    [
        ("gopher_quality", {"definitions": "corpuslake"}),
        ("gopher_repetition", {"definitions": "corpuslake"}),
        ("c4_doc", {}),
        ("fineweb", {"definitions": "corpuslake"}),
    ]
)
EARLIER_PARAMS = dict(EARLIER)


def approx(value: float):
    return pytest.approx(value, rel=1e-12, abs=1e-12)


# --- signals ---------------------------------------------------------------------------------------


def test_signal_names_are_unique_and_complete():
    assert len(NAMES) == len(set(NAMES)) == 59
    assert list(compute_signals(CLEAN)) == NAMES


def test_empty_text_is_all_zeros():
    assert compute_signals("") == dict.fromkeys(NAMES, 0.0)


def test_symbol_ratio_and_non_alpha_words():
    # 10 words, 2 of them "#": symbols 2/10; those 2 words have no letter either.
    s = compute_signals("# one two three four five six seven eight #")
    assert s["rps_doc_word_count"] == 10.0
    assert s["rps_doc_symbol_to_word_ratio"] == approx(0.2)
    assert s["rps_doc_frac_no_alph_words"] == approx(0.2)
    # "..." and "…" count as symbols too, "...." once: 3 of them and "##" in 4 words.
    assert compute_signals("wait.... what… really... ##")["rps_doc_symbol_to_word_ratio"] == approx(5 / 4)


def test_mean_word_length_counts_punctuation():
    # "ab," (3) and "abcd" (4): 7 / 2.
    assert compute_signals("ab, abcd")["rps_doc_mean_word_length"] == approx(3.5)


def test_duplicate_lines():
    # Non-empty lines "a b", "a b", "c d e": the second repeats the first.
    s = compute_signals("a b\na b\n\nc d e\n")
    assert s["rps_doc_num_lines"] == 3.0
    assert s["rps_doc_frac_dup_lines"] == approx(1 / 3)
    # 3 repeated characters of 3 + 3 + 5 line characters.
    assert s["rps_doc_frac_dup_line_chars"] == approx(3 / 11)
    # FineWeb divides by the text without its newlines: 15 characters - 4 newlines.
    assert s["fineweb_char_dup_ratio"] == approx(3 / 11)
    # 4 newlines per 7 words.
    assert s["fineweb_list_ratio"] == approx(4 / 7)
    # Every line is <= 30 characters.
    assert s["fineweb_short_line_ratio"] == 1.0


def test_duplicate_lines_compare_stripped_text():
    s = compute_signals("same line\n   same line  \r\nother")
    assert s["rps_doc_frac_dup_lines"] == approx(1 / 3)
    # "same line" (9) repeated, of 9 + 9 + 5.
    assert s["rps_doc_frac_dup_line_chars"] == approx(9 / 23)


def test_duplicate_paragraphs():
    # A whitespace-only line separates paragraphs too: "p one", "p two", "p one", "p one".
    s = compute_signals("p one\n\np two\n  \np one\n\n\np one")
    assert s["rps_doc_frac_dup_paragraphs"] == approx(2 / 4)
    assert s["rps_doc_frac_dup_paragraph_chars"] == approx(10 / 20)
    # CRLF blank lines separate paragraphs: two distinct ones, no repeat.
    crlf = compute_signals("Hello there.\r\nSecond line!\r\n\r\nHello there.")
    assert crlf["rps_doc_frac_dup_paragraphs"] == 0.0
    assert crlf["rps_doc_frac_dup_lines"] == approx(1 / 3)


def test_top_ngram_ties_go_to_the_first_in_text():
    # Tokens: the cat the cat a dog a dog (lengths 3 3 3 3 1 3 1 3 = 20 characters).
    # 2-grams "the cat" and "a dog" both occur twice; "the cat" comes first: 6 chars x 2 / 20.
    s = compute_signals("The cat, the cat. A dog a dog!")
    assert s["rps_doc_frac_chars_top_2gram"] == approx(12 / 20)
    # No 3-gram repeats, so the top 3-gram scores 0 (RedPajama-V2), not 7 / 20.
    assert s["rps_doc_frac_chars_top_3gram"] == 0.0


def test_top_ngram_on_small_text():
    # Tokens a b a b c d e (7 characters); "a b" occurs twice: 2 chars x 2 / 7.
    s = compute_signals("a b\na b\nc d e")
    assert s["rps_doc_frac_chars_top_2gram"] == approx(4 / 7)
    assert s["rps_doc_frac_chars_top_3gram"] == 0.0
    assert s["rps_doc_frac_chars_top_4gram"] == 0.0


def test_top_ngram_overlaps_can_pass_one():
    # "a a" occurs 5 times, overlapping, in 6 one-character tokens: 2 x 5 / 6.
    s = compute_signals("a a a a a a")
    assert s["rps_doc_frac_chars_top_2gram"] == approx(10 / 6)
    assert s["rps_doc_frac_chars_top_4gram"] == approx(4 * 3 / 6)
    # ...while the repeated 5-gram covers each word once: 6 / 6, not 10 / 6.
    assert s["rps_doc_frac_chars_dupe_5grams"] == 1.0
    assert s["rps_doc_frac_chars_dupe_6grams"] == 0.0


def test_dupe_ngrams_count_every_occurrence():
    # Tokens a b c d e a b c d e f: "a b c d e" at 0 and 5 covers 10 of 11 characters.
    # (datatrove's find_all_duplicate counts only the repeat: 5 / 11.)
    s = compute_signals("a b c d e a b c d e f")
    assert s["rps_doc_frac_chars_dupe_5grams"] == approx(10 / 11)
    assert s["rps_doc_frac_chars_dupe_6grams"] == 0.0


def test_dupe_ngrams_weight_by_characters_and_strip_punctuation():
    # Tokens aa b c d e x aa b c d e (13 characters): "aa b c d e" twice covers 6 + 6.
    s = compute_signals("AA b, c d e. x (aa) b c d e")
    assert s["rps_doc_frac_chars_dupe_5grams"] == approx(12 / 13)
    # Tokens a b c d e f a b c d e f: 5-grams "abcde" and "bcdef" repeat and cover every word once;
    # the 6-gram repeats too; no 7-gram does.
    s = compute_signals("a b c d e f a b c d e f")
    assert s["rps_doc_frac_chars_dupe_5grams"] == 1.0
    assert s["rps_doc_frac_chars_dupe_6grams"] == 1.0
    assert s["rps_doc_frac_chars_dupe_7grams"] == 0.0


def test_bullet_and_ellipsis_lines():
    # 5 non-empty lines; bullets "•" and "-" (after leading blanks), ellipses "..." and "…".
    s = compute_signals("• one\n  - two\nthree...\nfour…\n\nfive")
    assert s["rps_doc_frac_lines_start_with_bullet"] == approx(2 / 5)
    assert s["rps_doc_frac_lines_end_with_ellipsis"] == approx(2 / 5)
    # 7 words, of which "•" and "-" have no letter; one "..." and one "…".
    assert s["rps_doc_frac_no_alph_words"] == approx(2 / 7)
    assert s["rps_doc_symbol_to_word_ratio"] == approx(2 / 7)
    assert compute_signals("* a\n· b\n▪ c\nd")["rps_doc_frac_lines_start_with_bullet"] == approx(3 / 4)


def test_terminal_punctuation_c4_and_fineweb():
    # C4 accepts . ! ? " ' ” ’; FineWeb the same less ’. Trailing blanks do not hide the mark.
    s = compute_signals('He said "yes"\nReally?\nno punctuation\nIt’s mine’\nDone.   ')
    assert s["c4_frac_lines_end_with_punct"] == approx(4 / 5)
    assert s["fineweb_line_punct_ratio"] == approx(3 / 5)


def test_lorem_javascript_policy_and_curly():
    text = (
        "Lorem Ipsum dolor sit amet.\n"
        "Please enable JavaScript to view this page.\n"
        "javascript:void(0) and more JAVASCRIPT\n"
        "Read our Privacy Policy and Terms of Use.\n"
        "This site uses cookies.\n"
        "function f() { return 1; }"
    )
    s = compute_signals(text)
    assert s["rps_doc_lorem_ipsum"] == 1.0
    assert s["rps_lines_javascript_counts"] == 2.0  # lines, not mentions
    assert s["c4_policy_line_count"] == 2.0
    assert s["rps_doc_curly_bracket"] == 1.0
    plain = compute_signals("Nothing to see here.")
    assert (plain["rps_doc_lorem_ipsum"], plain["rps_doc_curly_bracket"]) == (0.0, 0.0)


def test_stop_words_are_counted_on_normalized_tokens():
    # Tokens the cat and the dog with love: "the", "and", "the", "with".
    s = compute_signals("The cat and THE dog, with love.")
    assert s["gopher_stop_word_count"] == 4.0
    assert s["rps_doc_stop_word_fraction"] == approx(4 / 7)


def test_unique_words_entropy_and_caps():
    s = compute_signals("a a b b")
    assert s["rps_doc_unigram_entropy"] == approx(math.log(2))
    assert s["rps_doc_frac_unique_words"] == approx(0.5)
    assert compute_signals("same same same")["rps_doc_unigram_entropy"] == 0.0
    # a:2 b:2 c:1 d:1 e:1 of 7.
    expected = -(2 * (2 / 7) * math.log(2 / 7) + 3 * (1 / 7) * math.log(1 / 7))
    assert compute_signals("a b a b c d e")["rps_doc_unigram_entropy"] == approx(expected)
    # NASA, IBM and BIG are upper case; "and", "are" are not.
    assert compute_signals("NASA and IBM are BIG")["rps_doc_frac_all_caps_words"] == approx(3 / 5)


def _reference_ngrams(text: str) -> dict[str, float]:
    """The n-gram signals the slow, obvious way, to check the fast path."""
    tokens = [t for t in (w.lower().strip(string.punctuation) for w in text.split()) if t]
    total = sum(map(len, tokens))
    out = {}
    for n in (2, 3, 4):
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        counts = Counter(grams)
        best, best_count = None, 0
        for g in grams:
            if counts[g] > best_count:
                best, best_count = g, counts[g]
        out[f"rps_doc_frac_chars_top_{n}gram"] = (
            sum(map(len, best)) * best_count / total if best_count > 1 else 0.0
        )
    for n in range(5, 11):
        grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        counts = Counter(grams)
        covered = [False] * len(tokens)
        for i, g in enumerate(grams):
            if counts[g] > 1:
                covered[i : i + n] = [True] * n
        chars = sum(len(t) for t, c in zip(tokens, covered, strict=True) if c)
        out[f"rps_doc_frac_chars_dupe_{n}grams"] = chars / total if total else 0.0
    return out


def test_ngram_signals_match_a_reference_implementation():
    rng = random.Random(7)
    vocab = ["a", "bb", "ccc", "the", "of", "Data,", "(x)", "...", "lake", "Spark!"]
    for _ in range(40):
        k = rng.randint(0, 6)
        size = rng.randint(0, 120)
        text = " ".join(rng.choice(vocab[: 3 + k]) for _ in range(size))
        actual = compute_signals(text)
        for name, value in _reference_ngrams(text).items():
            assert actual[name] == approx(value), (name, text)


VARIED = [
    "",
    "   \n\n\t ",
    CLEAN,
    CLEAN + "\n\n" + CLEAN,
    "a a a a a a a a a a a a",
    "• x\n• y\n• z",
    "!!! ??? ... ###",
    "日本語のテキストです。\n二行目…",
    "Hello there.\r\nSecond line!\r\n\r\nThird.",
    "def f():\n    return {1: 2}\n\n\n",
    "\n\n\n\nword",
    "İstanbul ŞEHİR ǅemal ß",
]


@pytest.mark.parametrize("text", VARIED)
def test_every_signal_is_a_float_in_its_range(text):
    s = compute_signals(text)
    assert list(s) == NAMES
    for sig in SIGNALS:
        value = s[sig.name]
        assert type(value) is float and not math.isnan(value), sig.name
        assert value >= sig.lo, (sig.name, value)
        assert sig.hi is None or value <= sig.hi, (sig.name, value)
    assert compute_signals(text) == s  # deterministic


# --- rules -----------------------------------------------------------------------------------------


def test_clean_paragraph_passes_every_default_rule():
    s = compute_signals(CLEAN)
    assert 50 <= s["rps_doc_word_count"] <= 100
    assert evaluate(s, EARLIER) is None
    assert all(c.passed for name, params in EARLIER for c in RULES[name](s, params))


def test_empty_text_fails_word_count_first():
    check = evaluate(compute_signals(""), EARLIER)
    assert check == Check("gopher_quality", "word_count", 0.0, False)
    assert check.reason == "gopher_quality:word_count"


def test_gopher_quality_checks():
    # 62 words: "the" (3) "of" (2) and 60 "x": mean length 65 / 62 is under 3.
    check = evaluate(compute_signals("the of " + "x " * 60), EARLIER)
    assert (check.reason, check.value) == ("gopher_quality:mean_word_length", approx(65 / 62))
    # 60 words without a stop word: only the last check fails.
    check = evaluate(compute_signals(" ".join(f"word{i}" for i in range(60))), EARLIER)
    assert (check.reason, check.value) == ("gopher_quality:stop_words", 0.0)
    # 81 + 10 words, 10 of them "#": 10 / 91 symbols per word is over 0.1.
    check = evaluate(compute_signals(CLEAN + " #" * 10), EARLIER)
    assert (check.reason, check.value) == ("gopher_quality:symbol_word_ratio", approx(10 / 91))
    names = [
        c.check for c in RULES["gopher_quality"](compute_signals(CLEAN), EARLIER_PARAMS["gopher_quality"])
    ]
    assert names == [
        "word_count",
        "word_count_max",
        "mean_word_length",
        "symbol_word_ratio",
        "bullet_lines",
        "ellipsis_lines",
        "alpha_words",
        "stop_words",
    ]


def test_gopher_repetition_checks():
    # The paragraph twice: 1 of 2 lines repeats, 0.5 > 0.3, and lines are checked before paragraphs.
    doubled = compute_signals(CLEAN + "\n\n" + CLEAN)
    check = evaluate(doubled, EARLIER)
    assert (check.reason, check.value) == ("gopher_repetition:dup_line_frac", 0.5)
    # Overriding one threshold keeps the others: the paragraph check is next.
    check = evaluate(
        doubled, [("gopher_repetition", {**EARLIER_PARAMS["gopher_repetition"], "dup_line_frac": 0.6})]
    )
    assert (check.reason, check.value) == ("gopher_repetition:dup_para_frac", 0.5)
    # "a b" twice in 11 one-character tokens: 2 x 2 / 11 > 0.2.
    check = evaluate(
        compute_signals("a b c d e a b c d e f"), [("gopher_repetition", EARLIER_PARAMS["gopher_repetition"])]
    )
    assert (check.reason, check.value) == ("gopher_repetition:top_2gram", approx(4 / 11))
    # With the top n-gram checks off, the 5-gram check fails at 10 / 11.
    check = evaluate(
        compute_signals("a b c d e a b c d e f"),
        [("gopher_repetition", {**EARLIER_PARAMS["gopher_repetition"], "top_n_grams": {}})],
    )
    assert (check.reason, check.value) == ("gopher_repetition:dup_5gram", approx(10 / 11))
    names = [c.check for c in RULES["gopher_repetition"](doubled, EARLIER_PARAMS["gopher_repetition"])]
    assert names[:4] == ["dup_line_frac", "dup_para_frac", "dup_line_char_frac", "dup_para_char_frac"]
    assert names[4:] == ["top_2gram", "top_3gram", "top_4gram"] + [f"dup_{n}gram" for n in range(5, 11)]


def test_c4_checks():
    check = evaluate(compute_signals("Lorem ipsum dolor sit amet."), [("c4_doc", {})])
    assert (check.reason, check.value) == ("c4_doc:lorem_ipsum", 1.0)
    assert evaluate(compute_signals("Lorem ipsum."), [("c4_doc", {"filter_lorem_ipsum": False})]) is None
    # 1 of 5 lines ends in punctuation: 0.2 is enough, 0 is not.
    assert evaluate(compute_signals("a\nb\nc\nd\ne."), [("c4_doc", {})]) is None
    check = evaluate(compute_signals("a\nb\nc\nd\ne"), [("c4_doc", {})])
    assert (check.reason, check.value) == ("c4_doc:terminal_punct", 0.0)
    check = evaluate(compute_signals("Enable JavaScript.\n" * 3), [("c4_doc", {})])
    assert (check.reason, check.value) == ("c4_doc:javascript", 3.0)
    # The curly bracket check is off by default.
    code = compute_signals("Use {braces}.")
    assert evaluate(code, [("c4_doc", {})]) is None
    check = evaluate(code, [("c4_doc", {"filter_curly_bracket": True})])
    assert (check.reason, check.value) == ("c4_doc:curly_bracket", 1.0)


def test_fineweb_checks():
    # Line punctuation 1/4 >= 0.12 passes; lines of 5, 9 and 13 characters are short: 3/4 > 0.67.
    s = compute_signals("Title\nshort one\nanother short\nA longer line that ends with a period.")
    check = evaluate(s, [("fineweb", {})])
    assert (check.reason, check.value) == ("fineweb:short_line_ratio", 0.75)
    # 1 of 10 lines ends in punctuation: 0.1 < 0.12.
    s = compute_signals("\n".join(["a line without an end of any kind"] * 9 + ["This one ends."]))
    check = evaluate(s, [("fineweb", {})])
    assert (check.reason, check.value) == ("fineweb:line_punct_ratio", approx(0.1))


def test_first_failure_follows_rule_order():
    doubled = compute_signals(CLEAN + "\n\n" + CLEAN)
    assert evaluate(doubled, EARLIER).reason == "gopher_repetition:dup_line_frac"
    # FineWeb first: the repeated line is half of the text's characters.
    check = evaluate(doubled, [("fineweb", {}), ("gopher_repetition", {})])
    assert (check.reason, check.value) == ("fineweb:char_dup_ratio", 0.5)
    assert evaluate(doubled, []) is None


def test_none_disables_a_threshold():
    doubled = compute_signals(CLEAN + "\n\n" + CLEAN)
    params = {"dup_line_frac": None, "dup_para_frac": None}
    check = evaluate(doubled, validate_rules([("gopher_repetition", params)]))
    assert check.reason == "gopher_repetition:dup_line_char_frac"


# --- validate_rules --------------------------------------------------------------------------------


def test_validate_rules_merges_over_defaults():
    rules = validate_rules([("gopher_quality", {"min_words": 10}), ("c4_doc", None), ("fineweb", {})])
    assert [name for name, _ in rules] == ["gopher_quality", "c4_doc", "fineweb"]
    defaults = dict(DEFAULT_RULES + OTHER_RULES)
    assert rules[0][1] == {**defaults["gopher_quality"], "min_words": 10}
    assert rules[1][1] == defaults["c4_doc"]
    assert validate_rules(DEFAULT_RULES) == [(name, params) for name, params in DEFAULT_RULES]


def test_validate_rules_accepts_string_ngram_keys():
    rules = validate_rules([("gopher_repetition", {"top_n_grams": {"2": 0.5, "4": 0.3}})])
    assert rules[0][1]["top_n_grams"] == {2: 0.5, 4: 0.3}
    # evaluate takes the string keys directly as well.
    s = compute_signals("a b c d e a b c d e f")  # top 2-gram 4/11, under 0.5
    check = evaluate(s, [("gopher_repetition", {"top_n_grams": {"2": 0.5}})])
    assert check.reason == "gopher_repetition:dup_5gram"


def test_validate_rules_returns_copies():
    rules = validate_rules([("gopher_repetition", {})])
    rules[0][1]["top_n_grams"][2] = 0.99
    assert dict(DEFAULT_RULES)["gopher_repetition"]["top_n_grams"][2] == 0.2


@pytest.mark.parametrize(
    ("rules", "named", "listed"),
    [
        ([("gopher", {})], "'gopher'", "gopher_quality, gopher_repetition, c4_lines, fineweb, c4_doc"),
        ([("c4_doc", {}), ("fineweb", {"min_words": 5})], "'min_words'", "line_punct_thr, short_line_thr"),
        ([("gopher_quality", {"min_word": 5})], "'min_word'", "min_words, max_words"),
    ],
)
def test_validate_rules_names_the_unknown(rules, named, listed):
    with pytest.raises(ValueError) as err:
        validate_rules(rules)
    assert named in str(err.value) and listed in str(err.value)


@pytest.mark.parametrize(
    "params",
    [
        {"min_words": "50"},
        {"min_words": True},
        {"min_words": float("nan")},
    ],
)
def test_validate_rules_rejects_bad_numbers(params):
    with pytest.raises(ValueError, match="min_words"):
        validate_rules([("gopher_quality", params)])


@pytest.mark.parametrize(
    ("rule", "params", "match"),
    [
        ("c4_doc", {"filter_lorem_ipsum": "yes"}, "filter_lorem_ipsum"),
        ("gopher_quality", {"definitions": "rpv2"}, "published, corpuslake"),
        ("gopher_repetition", {"top_n_grams": {7: 0.1}}, "n=7"),
        ("gopher_repetition", {"dup_n_grams": {"five": 0.1}}, "n='five'"),
        ("gopher_repetition", {"dup_n_grams": {5: "high"}}, "n=5"),
        ("gopher_repetition", {"top_n_grams": [0.2]}, "top_n_grams"),
        ("fineweb", ["line_punct_thr"], "mapping"),
    ],
)
def test_validate_rules_rejects_bad_params(rule, params, match):
    with pytest.raises(ValueError, match=match):
        validate_rules([(rule, params)])


def test_evaluate_rejects_an_unknown_rule():
    with pytest.raises(ValueError, match="'nope'.*gopher_quality"):
        evaluate(compute_signals(CLEAN), [("nope", {})])


# --- languages -------------------------------------------------------------------------------------

# Three lines in two paragraphs, each sentence ended with 。: 3 whitespace "words".
JAPANESE = (
    "東京の市立図書館は月曜日に新しい閲覧室を開きました。職員によると、この部屋は勉強会や静かな読書に使われます。\n"
    "来館者は図書館カードがあれば、受付でノートパソコンを借りることができます。\n\n"
    "市の担当者は、試験の時期に多くの学生が図書館を利用することを期待しています。"
)
GERMAN = (
    "Die Bibliothek der Stadt hat am Montag einen neuen Lesesaal eröffnet, und die Mitarbeiter sagen, dass "
    "der Raum für Lerngruppen, ruhiges Lesen und wöchentliche Vorträge genutzt wird. Besucher können an der "
    "Theke mit einem Ausweis Laptops ausleihen. Der Raum hat große Fenster, lange Tische und Regale mit "
    "Büchern zur Geschichte der Region. Die Stadt hofft, dass der neue Saal in der Prüfungszeit mehr "
    "Studenten in die Bibliothek bringt, und plant, die Öffnungszeiten im Frühjahr zu verlängern."
)


def test_unspaced_languages_skip_word_checks():
    s = compute_signals(JAPANESE, "ja")
    assert s["rps_doc_word_count"] == 3.0
    # As English, the text fails at once; as Japanese the word checks are skipped and every other passes.
    assert evaluate(s, EARLIER).reason == "gopher_quality:word_count"
    assert evaluate(s, EARLIER, "ja") is None
    # Sentence ends of other scripts count as terminal punctuation (C4 and FineWeb alike).
    assert s["c4_frac_lines_end_with_punct"] == s["fineweb_line_punct_ratio"] == 1.0
    assert compute_signals("हम घर जा रहे हैं।\nक्या आप आएंगे?\nनहीं")["c4_frac_lines_end_with_punct"] == approx(
        2 / 3
    )
    # The checks that do run still drop: the same text twice repeats its lines.
    check = evaluate(compute_signals(JAPANESE + "\n\n" + JAPANESE, "ja"), EARLIER, "ja")
    assert check.reason == "gopher_repetition:dup_line_frac"


def test_stop_words_per_language():
    en, de = compute_signals(GERMAN), compute_signals(GERMAN, "de")
    # der ×7, die ×5, und ×4, mit ×2, zu ×1 (Der and Die lowercased; "dass" is not "das"). English: none.
    assert (en["gopher_stop_word_count"], de["gopher_stop_word_count"]) == (0.0, 19.0)
    assert de["rps_doc_stop_word_fraction"] == approx(19 / de["rps_doc_word_count"])
    assert evaluate(en, EARLIER, "en").reason == "gopher_quality:stop_words"
    assert evaluate(de, EARLIER, "de") is None
    # Korean is written with spaces but has no stop-word list: only that check is skipped.
    assert skipped_checks(EARLIER, "ko") == ["gopher_quality:stop_words"]
    assert compute_signals(GERMAN, "ko") == en  # a language without a list counts English stop words


def test_which_checks_apply_to_which_language():
    assert skipped_checks(EARLIER, "en") == skipped_checks(EARLIER, "unknown") == []
    assert skipped_checks(EARLIER, "de") == []
    words = [f"gopher_quality:{c}" for c in ("word_count", "word_count_max", "mean_word_length")]
    words += ["gopher_quality:symbol_word_ratio", "gopher_quality:alpha_words", "gopher_quality:stop_words"]
    ngrams = [f"gopher_repetition:top_{n}gram" for n in (2, 3, 4)]
    ngrams += [f"gopher_repetition:dup_{n}gram" for n in range(5, 11)]
    fineweb = ["fineweb:short_line_ratio", "fineweb:list_ratio"]
    assert skipped_checks(EARLIER, "ja") == skipped_checks(EARLIER, "zh") == words + ngrams + fineweb
    thai = words + ngrams + ["c4_doc:terminal_punct", "fineweb:line_punct_ratio"] + fineweb
    assert skipped_checks(EARLIER, "th") == thai
    # Only enabled checks are listed: a disabled threshold or n-gram is not "skipped".
    old = {"definitions": "corpuslake"}
    rules = validate_rules(
        [("gopher_quality", {**old, "min_words": None}), ("gopher_repetition", {**old, "dup_n_grams": {}})]
    )
    assert skipped_checks(rules, "zh") == words[1:] + ngrams[:3]
    assert applies("gopher_quality", "bullet_lines", "zh") and not applies("c4_doc", "terminal_punct", "lo")
