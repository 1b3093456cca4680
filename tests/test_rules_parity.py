"""Parity with datatrove: its Gopher, C4 and FineWeb filters with the published settings against our rules
with their defaults, document by document, on the sample corpus.

The documents are the sample corpus's bronze rows (the session's ``ingested`` lakehouse: every input format,
malformed records already rejected), normalized as the clean stage does: the first ``N_DOCS`` English ones
(the generator's truth) by doc_id. They are read to the driver once: a test-only collect of a few hundred
rows. Our side runs the plain Python functions the clean stage's executors run (``udfs.quality_rules``, and
``udfs.c4.c4_lines`` as ``judge`` calls it): running them through Spark would add a minute and no verdict.
datatrove's side calls each filter's ``filter`` on a ``Document`` with datatrove's own English tokenizer
(spaCy's blank English pipeline and sentencizer, the bulk of the test's time; datatrove 0.10 needs no NLTK
data for English). FineWeb runs with FineWeb's published line ends (``. ' " ! ?``): datatrove 0.10's default
is FineWeb-2's multilingual set, which has no quotes.

Allowed disagreements (each is asserted to be the cause of every disagreement there is):

- ``tokens``: our words are an emulation of spaCy's English tokenizer without its full special-case table
  (no emoticons beyond the common ones, no three-part contractions such as ``y'all'd've``); a document on
  which the two tokenizations differ may fall on the other side of a word-based threshold.
- ``concatenation``: datatrove keys duplicate n-grams by their concatenated words, we by the word tuple;
  they differ only when two different n-grams concatenate to the same string.

On this sample there are none; the test fails on any disagreement it cannot explain, or on an agreement under
99% for any rule.
"""

from __future__ import annotations

from functools import lru_cache

import pytest
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.utils.word_tokenizers import SpaCyTokenizer

from schemas import bronze
from udfs.c4 import c4_lines
from udfs.normalize import normalize
from udfs.quality import compute_signals
from udfs.quality_rules import DEFAULT_RULES, applies, evaluate
from udfs.words import word_tokens

MIN_AGREEMENT = 0.99
# Enough for 1% to be 3 documents, few enough to keep spaCy's share of the test to a few seconds (all 468
# English documents of the sample agree as well).
N_DOCS = 300


class _SharedTokenizer(SpaCyTokenizer):
    """datatrove's English tokenizer, remembering its results: the Gopher and FineWeb filters tokenize the
    same text three times, and spaCy is most of the test's time."""

    def __init__(self):
        super().__init__("en")
        self.word_tokenize = lru_cache(maxsize=None)(self.word_tokenize)
        self.span_tokenize = lru_cache(maxsize=None)(self.span_tokenize)


@pytest.fixture(scope="module")
def documents(ingested) -> list[tuple[str, str]]:
    lh, truth = ingested[0], ingested[1]
    english = {sid for sid, d in truth["docs"].items() if d["lang"] == "en"}
    rows = lh.read(bronze.DOCUMENTS).select("doc_id", "source_id", "text").orderBy("doc_id").collect()
    out = [(doc_id, normalize(text)) for doc_id, sid, text in rows if sid in english]
    return [(doc_id, text) for doc_id, text in out if text][:N_DOCS]


@pytest.fixture(scope="module")
def verdicts(documents) -> dict[str, list[tuple[str, bool, bool]]]:
    """Per rule: (doc_id, ours passes, datatrove passes), and C4's kept texts."""
    tok = _SharedTokenizer()
    theirs = {
        "gopher_quality": GopherQualityFilter(language=tok),
        "gopher_repetition": GopherRepetitionFilter(language=tok),
        "c4_lines": C4QualityFilter(language=tok),
        "fineweb": FineWebQualityFilter(language=tok, stop_chars=(".", "'", '"', "!", "?")),
    }
    rules = dict(DEFAULT_RULES)
    out: dict[str, list] = {name: [] for name in theirs}
    texts = []
    for doc_id, text in documents:
        signals = compute_signals(text)
        for name, flt in theirs.items():
            doc = Document(text=text, id=doc_id)
            passed = flt.filter(doc)
            dt_pass = passed is True or (isinstance(passed, tuple) and passed[0])
            if name == "c4_lines":
                # What judge runs for c4_lines, without the signals of the text before and after.
                c4 = c4_lines(text, rules[name], lambda check: applies("c4_lines", check, "en"))
                ours = c4.check is None
                if ours and dt_pass:
                    texts.append((doc_id, c4.text, doc.text))
            else:
                ours = evaluate(signals, [(name, rules[name])]) is None
            out[name].append((doc_id, ours, dt_pass))
    out["texts"] = texts
    out["tokenizer"] = tok
    return out


def _explained(text: str, tok) -> list[str]:
    causes = []
    if word_tokens(text) != tok.word_tokenize(text):
        causes.append("tokens")
    words = word_tokens(text)
    for n in range(5, 11):
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        if len({"".join(g) for g in grams}) != len(set(grams)):
            causes.append("concatenation")
            break
    return causes


@pytest.mark.parametrize("rule", ["gopher_quality", "gopher_repetition", "c4_lines", "fineweb"])
def test_verdicts_agree_with_datatrove(verdicts, documents, rule):
    rows = verdicts[rule]
    assert len(rows) == len(documents) == N_DOCS
    text = dict(documents)
    disagree = [doc_id for doc_id, ours, theirs in rows if ours != theirs]
    unexplained = [d for d in disagree if not _explained(text[d], verdicts["tokenizer"])]
    assert unexplained == [], f"{rule}: disagreements with no allowed cause: {unexplained}"
    assert 1 - len(disagree) / len(rows) >= MIN_AGREEMENT, (rule, disagree)
    # Both sides drop documents: the agreement is not that of two rules that keep everything.
    assert 0 < sum(not ours for _, ours, _ in rows) < len(rows)


def test_c4_keeps_the_same_lines_as_datatrove(verdicts):
    texts = verdicts["texts"]
    assert len(texts) > 100
    assert [d for d, ours, theirs in texts if ours != theirs] == []
