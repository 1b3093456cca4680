"""Benchmark n-gram matching, the decontamination step's work on executors. Pure Python, no Spark.

A document is contaminated when it shares a word n-gram (lower-cased ``\\w+`` tokens, ``udfs.minhash.tokens``)
with a benchmark example. The n-grams of every example are one dictionary of strings, so matches are exact
(no hash collisions); ``jobs.methods.decontam`` builds it on the driver, broadcasts it and runs ``match`` on
each Arrow batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pandas as pd

from udfs.minhash import tokens


class BenchmarkMatcher:
    """The n-grams of benchmark examples, and the documents that share one.

    Args:
        ngram: words per n-gram.
        index: n-gram (tokens joined by single spaces) → ``(benchmark, example_id)`` of the first example
            added that holds it; empty when None (fill it with ``add``).
    """

    name = "decontamination"

    def __init__(self, ngram: int, index: dict[str, tuple[str, str]] | None = None):
        self.ngram = ngram
        self.index: dict[str, tuple[str, str]] = {} if index is None else index

    def grams(self, text: str) -> Iterator[str]:
        """The word n-grams of ``text``, in order, repeats included; none when it has fewer tokens."""
        toks = tokens(text)
        return (" ".join(toks[i : i + self.ngram]) for i in range(len(toks) - self.ngram + 1))

    def add(self, benchmark: str, example_id: str, text: str) -> None:
        """Index an example's n-grams; an n-gram another example holds already keeps that example."""
        for gram in self.grams(text):
            self.index.setdefault(gram, (benchmark, example_id))

    def match(self, doc_ids: Iterable, texts: Iterable[str]) -> dict[str, list]:
        """Columns ``doc_id, benchmark, example_id, hits`` for the documents sharing an n-gram.

        ``hits`` counts the document's n-gram occurrences found in the index; ``benchmark`` and
        ``example_id`` are those of its first one.
        """
        idx = self.index
        ids, bench, ex, hits = [], [], [], []
        for doc_id, text in zip(doc_ids, texts, strict=True):
            found = [idx[g] for g in self.grams(text) if g in idx]
            if found:
                ids.append(doc_id)
                bench.append(found[0][0])
                ex.append(found[0][1])
                hits.append(len(found))
        return {"doc_id": ids, "benchmark": bench, "example_id": ex, "hits": hits}

    def __call__(self, docs: pd.DataFrame) -> pd.DataFrame:
        """``docs [doc_id, text]`` → one row per contaminated document (see ``match``)."""
        return pd.DataFrame(self.match(docs["doc_id"], docs["text"]))
