"""Benchmark n-gram matching and excision: the decontamination step's work on executors. Pure Python.

A document is contaminated where it shares a word n-gram (lower-cased ``\\w+`` tokens) with a benchmark
example. The n-grams of every example are one dictionary of strings, so matches are exact (no hash
collisions); ``jobs.methods.decontam`` builds it on the driver, broadcasts it, runs ``BenchmarkMatcher.find``
on each Arrow batch, and hands each matched document with its matches to ``Excise``.

The n-gram length is the benchmark's own (``ngram_size``): GPT-3's rule, which BETR follows, takes the 5th
percentile of the benchmark's example lengths in words, within [8, 13], so short-answer benchmarks are
matched on shorter n-grams than passages.

``Excise`` applies the BETR recipe to one document: every match is cut out with ``window`` characters on
either side, overlapping cuts merge into one excised span, and the pieces between spans become the
document's text, joined by a blank line. A document cut in more than ``max_splits`` spans, or with nothing
left, is dropped; ``drop`` and ``flag`` are the older whole-document actions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pandas as pd

_WORD = re.compile(r"\w+")
# Pieces of an excised document are joined as paragraphs: the cut is a break in the text, never a seam
# that joins two half-sentences into one.
PIECE_JOIN = "\n\n"
VERDICTS = ("excised", "dropped", "emptied", "flagged")


def word_spans(text: str) -> list[tuple[str, int, int]]:
    """Lower-cased ``\\w+`` tokens with their ``[start, end)`` character offsets in ``text``."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def ngram_size(word_counts: Iterable[int], low: int, high: int) -> int:
    """A benchmark's n-gram length: the 5th-percentile example length in words (nearest rank), in [low, high].

    Args:
        word_counts: the words of each of the benchmark's examples.
        low, high: the bounds (8 and 13 in GPT-3 and BETR).
    """
    counts = sorted(word_counts)
    if not counts:
        return high
    p5 = counts[max(0, math.ceil(0.05 * len(counts)) - 1)]
    return min(high, max(low, p5))


class BenchmarkMatcher:
    """The n-grams of benchmark examples, and where documents contain them.

    Args:
        index: n-gram (tokens joined by single spaces) → ``(benchmark, example_id)`` of the first example
            added that holds it; empty when None (fill it with ``add``).
        sizes: the n-gram lengths in the index (one per benchmark at most).
    """

    name = "decontamination"

    def __init__(self, index: dict[str, tuple[str, str]] | None = None, sizes: Iterable[int] = ()):
        self.index: dict[str, tuple[str, str]] = {} if index is None else index
        self.sizes: set[int] = set(sizes)

    @staticmethod
    def grams(text: str, n: int) -> Iterator[tuple[str, int, int]]:
        """The word n-grams of ``text`` in order, repeats included, with their character span."""
        spans = word_spans(text)
        for i in range(len(spans) - n + 1):
            yield " ".join(t for t, _, _ in spans[i : i + n]), spans[i][1], spans[i + n - 1][2]

    def add(self, benchmark: str, example_id: str, text: str, n: int) -> None:
        """Index an example's n-grams; an n-gram another example holds already keeps that example."""
        self.sizes.add(n)
        for gram, _, _ in self.grams(text, n):
            self.index.setdefault(gram, (benchmark, example_id))

    def find(self, text: str) -> list[tuple[str, int, int, str, str]]:
        """Every occurrence of an indexed n-gram: ``(gram, start, end, benchmark, example_id)``, by start."""
        idx = self.index
        spans = word_spans(text)
        found = []
        for n in sorted(self.sizes):
            for i in range(len(spans) - n + 1):
                gram = " ".join(t for t, _, _ in spans[i : i + n])
                hit = idx.get(gram)
                if hit is not None:
                    found.append((gram, spans[i][1], spans[i + n - 1][2], hit[0], hit[1]))
        found.sort(key=lambda f: (f[1], f[2]))
        return found

    def matches(self, doc_ids: Iterable, texts: Iterable[str]) -> dict[str, list]:
        """Columns ``doc_id, gram, start, end, benchmark, example_id``: one row per match."""
        cols: dict[str, list] = {k: [] for k in ("doc_id", "gram", "start", "end", "benchmark", "example_id")}
        for doc_id, text in zip(doc_ids, texts, strict=True):
            for gram, start, end, bench, ex in self.find(text or ""):
                for k, v in zip(cols, (doc_id, gram, start, end, bench, ex), strict=True):
                    cols[k].append(v)
        return cols

    def __call__(self, docs: pd.DataFrame) -> pd.DataFrame:
        """``docs [doc_id, text]`` → one row per match (see ``matches``)."""
        return pd.DataFrame(self.matches(docs["doc_id"], docs["text"]))


@dataclass(frozen=True)
class Span:
    """One excised span: ``text[start:end]`` went, for ``matches`` matches, the first of ``example_id``."""

    start: int
    end: int
    benchmark: str
    example_id: str
    matches: int


def excised_spans(length: int, hits: list[tuple[int, int, str, str]], window: int) -> list[Span]:
    """The spans to cut: each match ``(start, end, benchmark, example_id)`` widened by ``window`` characters
    on both sides (within the text), overlapping or touching ones merged, in text order."""
    spans: list[Span] = []
    for start, end, bench, ex in sorted(hits, key=lambda h: (h[0], h[1])):
        lo, hi = max(0, start - window), min(length, end + window)
        if spans and lo <= spans[-1].end:
            last = spans[-1]
            spans[-1] = Span(last.start, max(last.end, hi), last.benchmark, last.example_id, last.matches + 1)
        else:
            spans.append(Span(lo, hi, bench, ex, 1))
    return spans


def pieces(text: str, spans: list[Span]) -> list[str]:
    """What is left between the spans, each stripped of surrounding whitespace; blank pieces left out."""
    out, pos = [], 0
    for s in [*spans, Span(len(text), len(text), "", "", 0)]:
        piece = text[pos : s.start].strip()
        if piece:
            out.append(piece)
        pos = s.end
    return out


class Excise:
    """The decontamination verdict of each matched document.

    Args:
        action: ``excise`` (BETR: cut the matches out), ``drop`` (the whole document) or ``flag`` (keep it,
            mark it).
        window: characters cut on each side of a match (``excise``).
        max_splits: more excised spans than this drop the document (``excise``).
    """

    name = "decontamination"

    def __init__(self, action: str, window: int = 200, max_splits: int = 10):
        if action not in ("excise", "drop", "flag"):
            raise ValueError(f"unknown decontamination action {action!r}")
        self.action, self.window, self.max_splits = action, window, max_splits

    def verdict(self, text: str, hits: list[tuple[int, int, str, str]]) -> dict:
        """One document: ``verdict`` (one of ``VERDICTS``), the new ``text`` (excised only), ``spans``, the
        first match's ``benchmark`` and ``example_id``, and ``n_matches``."""
        first = min(hits, key=lambda h: (h[0], h[1]))
        out = {
            "benchmark": first[2],
            "example_id": first[3],
            "n_matches": len(hits),
            "text": None,
            "spans": [],
        }
        if self.action != "excise":
            return {**out, "verdict": "dropped" if self.action == "drop" else "flagged"}
        spans = excised_spans(len(text), hits, self.window)
        rows = [{**s.__dict__, "text": text[s.start : s.end]} for s in spans]
        if len(spans) > self.max_splits:
            return {**out, "verdict": "dropped", "spans": rows}
        left = pieces(text, spans)
        if not left:
            return {**out, "verdict": "emptied", "spans": rows}
        return {**out, "verdict": "excised", "text": PIECE_JOIN.join(left), "spans": rows}

    def __call__(self, docs: pd.DataFrame) -> pd.DataFrame:
        """``docs [doc_id, text, hits]`` (hits: ``start, end, benchmark, example_id`` records) → one verdict
        row per document: ``doc_id``, ``verdict``, ``text``, ``benchmark``, ``example_id``, ``n_matches``,
        ``spans`` (records ``start, end, benchmark, example_id, matches, text``)."""
        rows = []
        for doc_id, text, hits in zip(docs["doc_id"], docs["text"], docs["hits"], strict=True):
            found = [(h["start"], h["end"], h["benchmark"], h["example_id"]) for h in hits]
            rows.append({"doc_id": doc_id, **self.verdict(text, found)})
        cols = ["doc_id", "verdict", "text", "benchmark", "example_id", "n_matches", "spans"]
        return pd.DataFrame(rows, columns=cols)
