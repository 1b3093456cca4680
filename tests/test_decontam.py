"""Decontamination as BETR does it, on crafted documents: matches, excised spans, splits, common n-grams."""

from __future__ import annotations

import pandas as pd
import pytest

from jobs.methods.decontam import Settings, benchmark_matcher, decontaminate, target_text
from jobs.runtime import UsageError
from udfs.decontam import BenchmarkMatcher, Excise, excised_spans, ngram_size, pieces

Q1 = "What is the boiling point of water at sea level"  # 10 words
Q2 = "Name the largest planet in the solar system"  # 8 words
Q3 = "Thanks for reading and please share this page with friends"  # 10 words
PASSAGE = "The red fox hunts small rodents in the cold northern forests at night"
R1 = f"Which animal is described?\n{PASSAGE}"  # load_refs' text: the support passage is a line of it
A = (
    "Intro text here. Trivia: what is the boiling point of water at sea level? "
    "The answer follows in the next part of this page."
)
FILL = " Some words fill the gap here, more than forty characters long. "
DOCS = [
    ("a", A),  # one quoted question: excised
    ("b", (Q2 + "." + FILL) * 3),  # three quotes far apart: 3 spans > max_splits 2, dropped
    ("c", "the largest planet in the solar system"),  # nothing left once cut: dropped
    ("d", f"A school reading: {PASSAGE.lower()}, said the book."),  # the support passage only
    # A stock phrase of q3 in 4 documents: more than max_doc_freq 3, so not contamination.
    *[
        (f"e{i}", f"Doc {i} ends here today. Please share this page with friends now, it helps us a lot.")
        for i in range(4)
    ],
]


def test_ngram_length_is_the_fifth_percentile_example_length_within_bounds():
    # GPT-3's rule (nearest rank): of 20 examples the 1st shortest, of 21 the 2nd.
    assert ngram_size([30] * 19 + [9], 8, 13) == 9
    assert ngram_size([30] * 19 + [9, 10], 8, 13) == 10
    assert ngram_size([3, 40], 8, 13) == 8 and ngram_size([40, 50], 8, 13) == 13
    assert ngram_size([], 8, 13) == 13


def test_matches_cuts_and_pieces_on_pandas():
    m = BenchmarkMatcher()
    m.add("quiz", "q1", Q1, 6)
    m.add("quiz", "q2", Q2, 6)
    m.add("quiz", "q3", "the largest planet in the solar system is", 6)  # its first 6-grams are q2's
    assert len(m.index) == 5 + 3 + 1 and m.sizes == {6}
    found = m(pd.DataFrame({"doc_id": ["a", "z"], "text": [A, "nothing here"]}))
    # The 10-word run "what … level" holds five 6-grams, each with its character span.
    assert found.to_dict("list") == {
        "doc_id": ["a"] * 5,
        "gram": [
            "what is the boiling point of",
            "is the boiling point of water",
            "the boiling point of water at",
            "boiling point of water at sea",
            "point of water at sea level",
        ],
        "start": [25, 30, 33, 37, 45],
        "end": [53, 59, 62, 66, 72],
        "benchmark": ["quiz"] * 5,
        "example_id": ["q1"] * 5,
    }
    assert A[25:72] == "what is the boiling point of water at sea level"
    # Cuts widen by the window, merge when they overlap or touch, and stay within the text.
    hits = [(5, 10, "b", "x"), (30, 40, "b", "y"), (21, 25, "b", "z"), (95, 99, "b", "w")]
    spans = excised_spans(100, hits, 5)
    assert [(s.start, s.end, s.example_id, s.matches) for s in spans] == [
        (0, 15, "x", 1),
        (16, 45, "z", 2),  # (25, 45) overlaps (16, 30): one span, named after its first match
        (90, 100, "w", 1),
    ]
    assert pieces("0123456789" * 10, spans) == ["5", "567890123456789012345678901234567890123456789"]
    # Cuts that touch merge too.
    assert [(s.start, s.end) for s in excised_spans(100, [(5, 10, "b", "x"), (20, 25, "b", "z")], 5)] == [
        (0, 30)
    ]


def test_excise_verdicts_on_pandas():
    hits = [(s, e, "quiz", "q1") for s, e in ((25, 53), (30, 59), (33, 62), (37, 66), (45, 72))]
    v = Excise("excise", window=10, max_splits=2).verdict(A, hits)
    assert v["verdict"] == "excised" and v["n_matches"] == 5
    # 10 characters either side of "what … level" go: the rest is two pieces, one paragraph each.
    assert v["text"] == "Intro text here\n\ner follows in the next part of this page."
    assert v["spans"] == [
        {
            "start": 15,
            "end": 82,
            "benchmark": "quiz",
            "example_id": "q1",
            "matches": 5,
            "text": ". Trivia: what is the boiling point of water at sea level? The answ",
        }
    ]
    # Nothing is lost: the pieces and the cut span are the text (up to the whitespace at the cuts).
    assert A[:15] + v["spans"][0]["text"] + A[82:] == A
    three = [(0, 5, "quiz", "q2"), (100, 105, "quiz", "q2"), (200, 205, "quiz", "q2")]
    assert Excise("excise", 10, 2).verdict("x" * 300, three)["verdict"] == "dropped"
    assert Excise("excise", 10, 3).verdict("x" * 300, three)["verdict"] == "excised"
    assert Excise("excise", 200, 3).verdict("x" * 300, three)["verdict"] == "emptied"
    assert Excise("drop").verdict(A, hits)["verdict"] == "dropped"
    flagged = Excise("flag").verdict(A, hits)
    assert (flagged["verdict"], flagged["text"], flagged["spans"]) == ("flagged", None, [])


def test_support_passage_is_a_target_only_on_request():
    assert target_text(R1, PASSAGE, with_support=False) == "Which animal is described?\n\n"
    assert target_text(R1, PASSAGE, with_support=True) == R1
    assert target_text(Q1, None, with_support=False) == Q1


def _bench(spark):
    return spark.createDataFrame(
        [
            ("quiz", "q1", Q1, None),
            ("quiz", "q2", Q2, None),
            ("quiz", "q3", Q3, None),
            ("read", "r1", R1, PASSAGE),
        ],
        "benchmark string, example_id string, text string, support string",
    )


def test_decontaminate_on_crafted_documents(spark):
    docs = spark.createDataFrame(DOCS, "doc_id string, text string").coalesce(1)
    # Window 10, at most 2 spans, n-grams in more than 3 documents ignored, support passages not targets.
    out = decontaminate(_bench(spark), Settings("excise", 4, 6, 10, 2, 3, False))(docs)
    # quiz: 5th-percentile length 8 words → 6 (the bound); read: "Which animal is described?" → 4.
    assert out.sizes == {"quiz": 6, "read": 4}
    got = {
        r["doc_id"]: (r["verdict"], r["text"], r["n_matches"], len(r["spans"]))
        for r in out.verdicts.collect()
    }
    assert got == {
        "a": ("excised", "Intro text here\n\ner follows in the next part of this page.", 5, 1),
        "b": ("dropped", None, 9, 3),
        "c": ("emptied", None, 2, 1),
    }
    # "please share this page with friends" is in 4 documents (> 3): common, ignored; d quotes a passage.
    assert [tuple(r) for r in out.common.collect()] == [("please share this page with friends", 4)]
    rows = [tuple(r) for r in out.excisions.collect()]
    assert rows == [
        (
            "a",
            1,
            15,
            82,
            "quiz",
            "q1",
            5,
            ". Trivia: what is the boiling point of water at sea level? The answ",
        )
    ]
    for df in out.cached:
        df.unpersist()

    # Support passages as targets, no frequency cap: d is cut, the e documents too.
    out = decontaminate(_bench(spark), Settings("excise", 4, 6, 10, 2, None, True))(docs)
    assert out.sizes == {"quiz": 6, "read": 6}
    got = {r["doc_id"]: (r["verdict"], r["text"]) for r in out.verdicts.collect()}
    assert got["d"] == ("excised", "A school\n\nbook.")
    assert {d: v for d, (v, _) in got.items() if d.startswith("e")} == {f"e{i}": "excised" for i in range(4)}
    assert got["e0"][1] == "Doc 0 ends he\n\nelps us a lot."
    assert out.excisions.count() == 1 + 1 + 4
    for df in out.cached:
        df.unpersist()


def test_benchmark_ngrams_past_the_bound_stop_the_stage(spark):
    bench = spark.createDataFrame([("quiz", "q1", Q1)], "benchmark string, example_id string, text string")
    # A table from before the support column counts as one without support passages.
    matcher, sizes = benchmark_matcher(bench, Settings(min_ngram=6, max_ngram=6), max_ngrams=5)
    assert (len(matcher.index), sizes) == (5, {"quiz": 6})
    with pytest.raises(
        UsageError, match=r"^decontamination: ref.benchmarks holds more than 4 distinct n-grams"
    ):
        benchmark_matcher(bench, Settings(min_ngram=6, max_ngram=6), max_ngrams=4)
