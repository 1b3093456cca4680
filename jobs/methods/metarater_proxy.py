"""Meta-rater's proxy step: a validation loss for each proposal's selection, behind one small interface.

``Proxy.losses`` takes the proposals' selections and returns one validation loss per proposal. Three
implementations, chosen by the stage from ``aggregate.weights.proxy``:

  BigramProxy   ``ngram``: the local stand-in for proxy training runs. Per proposal, a bigram LM
                smoothed toward an add-one unigram LM, trained on its selection and scored as
                cross-entropy on held-out texts, for every proposal in one Spark SQL query
                (``jobs/sql/metarater_proxy_lm.sql``).
  TrainedProxy  ``train``: per proposal, a small causal LM trained from scratch on its selection under a
                fixed token budget and seed, one Spark task per proposal (``jobs.methods.lm_runs``), and
                its validation loss on the dev texts. Resumable: each proposal has a key (its selection,
                the model, the dev texts), results already recorded under a key are reused, and the rest
                are trained in chunks that the stage commits as they finish.
  ResultsFile   ``table``: the losses of real proxy training runs on the manifest, read from a CSV/JSONL
                of ``weights_id, val_loss`` (``read_proxy_results``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, LongType, StructField, StructType

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
    with proxy_lm_query(selection, docs, val_texts, mu) as query:
        out = query.toPandas()
    return out.sort_values("weights_id").reset_index(drop=True)


@contextlib.contextmanager
def proxy_lm_query(
    selection: DataFrame, docs: DataFrame, val_texts: DataFrame, mu: float
) -> Iterator[DataFrame]:
    """``builtin_proxy``'s query (``jobs/sql/metarater_proxy_lm.sql``) over its views, to run inside the
    block; the frames cached for the views are unpersisted when it ends.

    The selected documents' bigrams are tokenized once into a cache that is filled before the query runs:
    the query reads them in several branches at once (counts, totals, vocabulary), and each would otherwise
    tokenize every selected text again to fill it.
    """
    spark = selection.sparkSession
    sel = selection.select("weights_id", "doc_id")
    ids = sorted(r["weights_id"] for r in sel.select("weights_id").distinct().collect())
    proxy_ids = spark.createDataFrame([(w,) for w in ids], "weights_id string")
    proxy_docs = (
        docs.join(sel.select("doc_id").distinct(), "doc_id", "left_semi")
        .select("doc_id", bigrams(tokenize(F.col("text"))).alias("bigrams"))
        .withColumn("n_tokens", F.size("bigrams"))
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
        proxy_docs.count()
        views = {
            "proxy_selection": sel,
            "proxy_ids": proxy_ids,
            "proxy_docs": proxy_docs,
            "val_bigrams": val_bigrams,
        }
        yield run_sql(spark, "metarater_proxy_lm", views, mu=float(mu))
    finally:
        proxy_docs.unpersist()
        val_bigrams.unpersist()


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
    """The n-gram proxy (``builtin_proxy``): an LM per selection, scored on ``val_texts``.

    Args:
        docs: ``[doc_id, text]``, a superset of the selected documents (silver.documents).
        val_texts: ``[text]``, the held-out validation texts (ref.benchmarks' target splits).
        mu: smoothing mass of the bigram LM toward its unigram LM.
        val_name: what the validation texts are, for gold.proxy_results.detail and messages.
    """

    source = "ngram"

    def __init__(
        self, docs: DataFrame, val_texts: DataFrame, mu: float, val_name: str = "ref.benchmarks texts"
    ):
        self.docs, self.val_texts, self.mu, self.val_name = docs, val_texts, mu, val_name

    def losses(self, selection: DataFrame | None, proposal_ids: Sequence[str]) -> ProxyLosses:
        """The LMs' cross-entropies for the proposals ``selection`` holds (it is required here)."""
        n_val = self.val_texts.count()
        if not n_val:
            raise UsageError(
                f"proxy=ngram scores each proposal's LM on the {self.val_name}, and there are none: run "
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


def detail_key(detail: str | None) -> str | None:
    """The key a trained proxy's gold.proxy_results row ends its detail with (``…; key <16 hex>``)."""
    m = re.search(r"key ([0-9a-f]{16})$", detail or "")
    return m.group(1) if m else None


class TrainedProxy(Proxy):
    """Proxy training runs here: a small causal LM per proposal, trained on its selection (the first
    ``train_tokens`` of its documents in a seeded order, the same seed for every proposal), its loss the
    mean NLL per token (nats) on ``dev_texts``.

    Args:
        docs: ``[doc_id, text]``, a superset of the selected documents (silver.documents).
        dev_texts: the validation texts: ref.benchmarks examples of the target splits (targets, so the
            driver may hold them; never the evaluation split).
        dev_label: what the dev texts are, for the rows' detail.
        spec: the model (``udfs.lm_train.LMSpec``).
        train_tokens: tokens every proxy trains on (whole steps of ``spec``).
        seed: initialisation and data order, the same for every proposal.
        chunk: proposals trained (one task each) per ``record`` call.
        recorded: key → the result row an earlier run recorded (``weights_id`` is replaced).
        record: called with each chunk's results as it finishes; the stage commits them.
        profile: a stage-level resource profile (GPUs per task), or None.
    """

    source = "train"

    def __init__(
        self, docs, dev_texts, dev_label, spec, train_tokens, seed, chunk, recorded, record, profile=None
    ):
        self.docs, self.dev_texts, self.dev_label = docs, list(dev_texts), dev_label
        self.spec, self.train_tokens, self.seed, self.chunk = spec, train_tokens, seed, chunk
        self.recorded, self.record, self.profile = recorded, record, profile
        self.reused = self.trained = 0

    def fingerprint(self) -> str:
        """The model, budget, seed and dev texts: what a proposal's key adds to its selection."""
        settings = {k: v for k, v in dataclasses.asdict(self.spec).items() if k != "tokenizer_json"}
        settings["tokenizer"] = hashlib.sha256(self.spec.tokenizer_json.encode()).hexdigest()
        settings["dev"] = hashlib.sha256("\x00".join(sorted(self.dev_texts)).encode()).hexdigest()
        settings.update(train_tokens=self.train_tokens, seed=self.seed)
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()

    def keys(self, selection: DataFrame) -> dict[str, str]:
        """weights_id → key: the proposal's documents (count and XOR of their hashes) and ``fingerprint``."""
        fp = self.fingerprint()
        rows = (
            selection.groupBy("weights_id")
            .agg(F.count("*").alias("n"), F.expr("bit_xor(xxhash64(doc_id))").alias("x"))
            .collect()
        )
        return {
            r["weights_id"]: hashlib.sha256(f"{fp}|{r['n']}|{r['x']}".encode()).hexdigest()[:16] for r in rows
        }

    def detail(self, key: str) -> str:
        return (
            f"{self.spec.describe()}; {self.train_tokens:,} tokens, seed {self.seed}; mean NLL per token on "
            f"{len(self.dev_texts):,} {self.dev_label}; key {key}"
        )

    def losses(self, selection: DataFrame | None, proposal_ids: Sequence[str]) -> ProxyLosses:
        """Reuses the recorded results whose key matches, trains the rest chunk by chunk."""
        from jobs.methods.lm_runs import budget_cut, stream_tokens

        keys = self.keys(selection)
        todo = [w for w in proposal_ids if keys.get(w) not in self.recorded]
        out = [
            {**self.recorded[keys[w]], "weights_id": w, "detail": self.detail(keys[w])}
            for w in proposal_ids
            if w not in todo and w in keys
        ]
        self.reused, self.trained = len(out), len(todo)
        if todo:
            sel = selection.filter(F.col("weights_id").isin(todo)).select("weights_id", "doc_id")
            texts = self.docs.select("doc_id", "text")
            counts = stream_tokens(self.spec)(
                texts.join(sel.select("doc_id").distinct(), "doc_id", "left_semi")
            )
            order = F.xxhash64("doc_id", F.lit(self.seed), F.lit("proxy-order"))
            rows = sel.join(counts, "doc_id").withColumn("order", order).persist()
            try:
                self._check_budget(rows)
                for i in range(0, len(todo), self.chunk):
                    part = self._train(rows, todo[i : i + self.chunk], texts, keys, budget_cut)
                    self.record(part)
                    out += part.to_dict("records")
            finally:
                rows.unpersist()
        results = pd.DataFrame(out).set_index("weights_id").loc[list(proposal_ids)].reset_index()
        detail = (
            f"{self.spec.describe()}; {self.train_tokens:,} tokens; {len(self.dev_texts):,} {self.dev_label}"
        )
        return ProxyLosses(results, detail)

    def _check_budget(self, rows: DataFrame) -> None:
        totals = (
            rows.groupBy("weights_id").agg(F.sum("lm_tokens").alias("t")).orderBy("t", "weights_id").first()
        )
        if totals is not None and totals["t"] < self.train_tokens:
            raise UsageError(
                f"proxy=train: proposal {totals['weights_id']} selects {totals['t']:,} tokens under the "
                "proxy tokenizer, fewer than aggregate.weights.proxy_model.train_tokens "
                f"{self.train_tokens:,}: every proxy trains on the same tokens; lower train_tokens (or raise "
                "top_share)"
            )

    def _train(self, rows: DataFrame, ids: list[str], texts: DataFrame, keys, budget_cut) -> pd.DataFrame:
        from jobs.methods.lm_runs import TRAIN, train_runs

        spark = rows.sparkSession
        runs = spark.createDataFrame(list(enumerate(ids)), "run int, weights_id string")
        part = rows.join(F.broadcast(runs), "weights_id").select("run", "doc_id", "lm_tokens", "order")
        hold: list[DataFrame] = []
        try:
            cut = budget_cut(self.train_tokens, hold)(part)
            data = cut.join(texts, "doc_id").select(
                "run", F.lit(TRAIN).alias("role"), "order", "doc_id", "text"
            )
            res = train_runs(
                data,
                len(ids),
                _proxy_task(self.spec, self.train_tokens, self.seed, self.dev_texts),
                PROXY_RUN_SCHEMA,
                self.profile,
            ).toPandas()
        finally:
            for df in hold:
                df.unpersist()
        if len(res) != len(ids):
            raise RuntimeError(
                f"proxy=train: {len(ids) - len(res)} of {len(ids)} proxy runs returned nothing"
            )
        res["weights_id"] = [ids[r] for r in res["run"]]
        res["detail"] = [self.detail(keys[w]) for w in res["weights_id"]]
        return res.drop(columns="run")


PROXY_RUN_SCHEMA = StructType(
    [
        StructField("run", IntegerType(), False),
        StructField("val_loss", DoubleType(), False),
        StructField("train_docs", LongType(), False),
        StructField("train_tokens", LongType(), False),
        StructField("val_tokens", LongType(), False),
    ]
)


def _proxy_task(spec, train_tokens: int, seed: int, dev_texts: list[str]):
    """One proposal's task: pack its budget, train at the seed, mean NLL per token on the dev texts."""

    def task(run: int, train: list[str], _heldout: list[str]) -> list[tuple]:
        from udfs.lm_train import encode, pack, text_nll
        from udfs.lm_train import train as fit

        trained = fit(spec, pack(spec, train, train_tokens), seed)
        nll, _ = text_nll(trained, spec, dev_texts)
        n_tok = sum(len(ids) for ids in encode(spec, dev_texts))
        return [(run, float(nll.sum() / n_tok), len(train), trained.tokens, n_tok)]

    return task
