"""Meta-rater's proxy step: a validation loss for each proposal's selection, behind one small interface.

``Proxy.losses`` takes the proposals' selections and returns one validation loss per proposal. Two
implementations, chosen by the stage from ``aggregate.weights.proxy``:

  BigramProxy   ``builtin``: the local stand-in for proxy training runs. Per proposal, a bigram LM
                smoothed toward an add-one unigram LM, trained on its selection and scored as
                cross-entropy on held-out texts, for every proposal in one Spark SQL query
                (``jobs/sql/metarater_proxy_lm.sql``).
  ResultsFile   ``table``: the losses of real proxy training runs on the manifest, read from a CSV/JSONL
                of ``weights_id, val_loss`` (``read_proxy_results``).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.queries import run_sql
from jobs.runtime import UsageError

# Words (runs of letters and digits) and single other non-space characters, after lowercasing: the
# builtin proxy's tokenizer (Java regex, run by Spark's regexp_extract_all).
TOKEN_PATTERN = r"[\p{L}\p{N}]+|[^\s\p{L}\p{N}]"
BOS = "<s>"  # the history of a text's first token; never a token (runs of letters/digits, or one other char)


def tokenize(text: Column) -> Column:
    """The builtin proxy's tokens: ``TOKEN_PATTERN`` matches of the lowercased text."""
    return F.regexp_extract_all(F.lower(text), F.lit(TOKEN_PATTERN), 0)


def bigrams(toks: Column) -> Column:
    """One ``struct(prev, tok)`` per token of a token array; prev is ``'<s>'`` for the first token."""
    pairs = F.zip_with(
        F.concat(F.array(F.lit(BOS)), toks), toks, lambda p, t: F.struct(p.alias("prev"), t.alias("tok"))
    )
    # zip_with pads the shorter array with a null: the pair after the last token.
    return F.filter(pairs, lambda b: b["tok"].isNotNull())


def builtin_proxy(selection: DataFrame, docs: DataFrame, val_texts: DataFrame, mu: float) -> pd.DataFrame:
    """The local stand-in for proxy training runs, for every proposal in one query.

    Per proposal, a bigram LM (Dirichlet-smoothed toward an add-one unigram LM, mass ``mu``) trained on
    the proposal's selected documents, scored as cross-entropy (nats per token) on the validation texts;
    see ``jobs/sql/metarater_proxy_lm.sql`` for the formulas. Selections are joined to per-document
    counts of the n-grams the validation texts need: a few Spark jobs for all proposals, never a loop.
    Selected documents are one row each (their bigrams as an array, counted inside the task), and no
    shuffle is keyed by the proposal alone.

    Args:
        selection: ``[weights_id, doc_id]``, each proposal's training documents.
        docs: ``[doc_id, text]`` (a superset of the selected documents).
        val_texts: ``[text]``, the held-out validation texts.
        mu: smoothing mass.

    Returns:
        ``[weights_id, val_loss, train_docs, train_tokens, val_tokens]``, one row per proposal.
    """
    spark = selection.sparkSession
    sel = selection.select("weights_id", "doc_id")
    ids = sorted(r["weights_id"] for r in sel.select("weights_id").distinct().collect())
    proxy_ids = spark.createDataFrame([(w,) for w in ids], "weights_id string")
    proxy_docs = (
        docs.join(sel.select("doc_id").distinct(), "doc_id", "left_semi")
        .select("doc_id", bigrams(tokenize(F.col("text"))).alias("bigrams"))
        .persist()
    )
    val_bigrams = (
        val_texts.select(tokenize(F.col("text")).alias("tokens"))
        .select(F.inline(bigrams(F.col("tokens"))))
        .groupBy("prev", "tok")
        .agg(F.count("*").alias("n"))
        .persist()
    )
    try:
        views = {
            "proxy_selection": sel,
            "proxy_ids": proxy_ids,
            "proxy_docs": proxy_docs,
            "val_bigrams": val_bigrams,
        }
        out = run_sql(spark, "metarater_proxy_lm", views, mu=float(mu)).toPandas()
    finally:
        proxy_docs.unpersist()
        val_bigrams.unpersist()
    return out.sort_values("weights_id").reset_index(drop=True)


def read_proxy_results(path: str, proposal_ids: list[str]) -> pd.DataFrame:
    """``[weights_id, val_loss]`` from real proxy runs (CSV with a header, or JSONL), one per proposal.

    Raises:
        UsageError: the file is missing or unreadable, a column is missing, a loss is not a finite
            number, a weights_id repeats, is not a proposal of gold.rater_weights, or a proposal has no
            result.
    """
    where = f"aggregate.weights.proxy_results {path}"
    if not os.path.isfile(path):
        raise UsageError(f"{where}: no such file")
    ext = path.lower().rsplit(".", 1)[-1]
    if ext not in ("csv", "jsonl", "json", "ndjson"):
        raise UsageError(f"{where}: expected a .csv (with a header) or a .jsonl file")
    try:
        if ext == "csv":
            df = pd.read_csv(path, dtype={"weights_id": str})
        else:
            df = pd.read_json(path, lines=True, dtype={"weights_id": str})
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: not readable as {ext}: {str(exc).splitlines()[0]}") from None
    missing_cols = [c for c in ("weights_id", "val_loss") if c not in df.columns]
    if missing_cols:
        raise UsageError(f"{where}: missing column(s) {missing_cols}; found {list(df.columns)}")
    df = df[["weights_id", "val_loss"]].copy()
    df["weights_id"] = df["weights_id"].astype("string").str.strip()
    loss = pd.to_numeric(df["val_loss"], errors="coerce")
    bad = df[df["weights_id"].isna() | ~np.isfinite(loss.astype(float))]
    if len(bad):
        rows = [f"record {i + 1}: {r.weights_id!r}, {r.val_loss!r}" for i, r in bad.head(5).iterrows()]
        raise UsageError(f"{where}: {len(bad)} row(s) without a weights_id or a finite val_loss: {rows}")
    df["val_loss"] = loss.astype(float)
    dupes = sorted(df.loc[df["weights_id"].duplicated(), "weights_id"].unique())
    if dupes:
        raise UsageError(f"{where}: weights_id repeated: {dupes[:10]}")
    known = set(proposal_ids)
    unknown = sorted(set(df["weights_id"]) - known)
    if unknown:
        raise UsageError(
            f"{where}: unknown weights_id {unknown[:10]}{' …' if len(unknown) > 10 else ''}; "
            f"gold.rater_weights holds proposals {proposal_ids[0]}…{proposal_ids[-1]} ({len(proposal_ids)})"
        )
    absent = [i for i in proposal_ids if i not in set(df["weights_id"])]
    if absent:
        raise UsageError(
            f"{where}: no result for {len(absent)} of {len(proposal_ids)} proposals: {absent[:10]}"
            f"{' …' if len(absent) > 10 else ''}; add their runs (or re-propose with fewer proposals)"
        )
    return df.set_index("weights_id").loc[proposal_ids].reset_index()


@dataclass(frozen=True)
class ProxyLosses:
    """What a proxy returns: the losses and a line saying how they were made (gold.proxy_results.detail)."""

    results: pd.DataFrame  # [weights_id, val_loss, and train_docs, train_tokens, val_tokens where known]
    detail: str


class Proxy(ABC):
    """Where each proposal's validation loss comes from; ``source`` is gold.proxy_results.source."""

    source: ClassVar[str]

    @abstractmethod
    def losses(self, selection: DataFrame | None, proposal_ids: Sequence[str]) -> ProxyLosses:
        """One validation loss per proposal, by weights_id ascending.

        Args:
            selection: ``[weights_id, doc_id]``, each proposal's documents (None where the proxies were
                trained elsewhere, on the manifest).
            proposal_ids: the proposals, ascending.

        Raises:
            UsageError: the proxy's inputs cannot give a loss for the proposals.
        """


class BigramProxy(Proxy):
    """The builtin proxy (``builtin_proxy``): an LM per selection, scored on ``val_texts``.

    Args:
        docs: ``[doc_id, text]``, a superset of the selected documents (silver.documents).
        val_texts: ``[text]``, the held-out validation texts (ref.benchmarks' target splits).
        mu: smoothing mass of the bigram LM toward its unigram LM.
        val_name: what the validation texts are, for gold.proxy_results.detail and messages.
    """

    source = "builtin"

    def __init__(
        self, docs: DataFrame, val_texts: DataFrame, mu: float, val_name: str = "ref.benchmarks texts"
    ):
        self.docs, self.val_texts, self.mu, self.val_name = docs, val_texts, mu, val_name

    def losses(self, selection: DataFrame | None, proposal_ids: Sequence[str]) -> ProxyLosses:
        """The LMs' cross-entropies for the proposals ``selection`` holds (it is required here)."""
        n_val = self.val_texts.count()
        if not n_val:
            raise UsageError(
                f"proxy=builtin scores each proposal's LM on the {self.val_name}, and there are none: run "
                "load_refs first, or train real proxies and use proxy: table"
            )
        res = builtin_proxy(selection, self.docs, self.val_texts, self.mu)
        detail = (
            f"bigram LM smoothed toward an add-one unigram LM (mu {self.mu:g}), trained on the proposal's "
            f"selection; cross-entropy in nats per token on {n_val:,} {self.val_name}"
        )
        return ProxyLosses(res, detail)


class ResultsFile(Proxy):
    """Real proxy runs' losses from ``path`` (CSV with a header, or JSONL; ``read_proxy_results``)."""

    source = "table"

    def __init__(self, path: str):
        self.path = path

    def losses(self, selection: DataFrame | None, proposal_ids: Sequence[str]) -> ProxyLosses:
        """The file's losses, checked against ``proposal_ids``; ``selection`` is not read (the runs
        trained on the manifest elsewhere)."""
        return ProxyLosses(read_proxy_results(self.path, list(proposal_ids)), os.path.abspath(self.path))
