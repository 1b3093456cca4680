"""The page classifier (pageclf), shared by BETR and the perplexity-correlation page step: pages labelled 1
(include) or 0 (the rest) → a model → ``p_include``, its probability of label 1, for every page of the pool.

Two backends (``Classifier.backend``):

  fasttext  fastText's supervised classifier (``fasttext-numpy2`` wheel), as both papers use it, with each
            paper's settings (``FastText``). It trains on the driver from the bounded training sample, which
            streams to a file partition by partition (``toLocalIterator``: driver memory holds one
            partition, never the sample); the model file goes to the executors with ``SparkContext.addFile``
            and a pandas UDF scores the pool there (``udfs.fasttext_clf``), each Python worker loading it
            once. The file is written in a seeded hash order and fastText's single thread (``threads`` 1,
            seeded) reads it in that order; the fit runs under ``zero_filled_allocations`` (this fastText
            leaves most of its input matrix uninitialised), so two fits of one file give the same model.
  spark_lr  the distributed stand-in on Spark ML, a linear model over hashed unigrams and bigrams as
            fastText's is: RegexTokenizer (lowercase, split on non-word characters) → NGram(2) → unigrams
            ++ bigrams → HashingTF (``num_features`` buckets) → LogisticRegression (L-BFGS, L2
            ``reg_param``). Deterministic: hashing is MurmurHash3 and L-BFGS starts from zero, so the same
            rows in the same partitions give the same model.

``fit`` trains either and returns a ``PageModel``: ``score(df)`` adds ``p_include``; ``unpersist()`` removes
the fastText model's files (the stages release it with their persisted frames, when they end).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import HashingTF, NGram, RegexTokenizer, SQLTransformer
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Intermediate columns: prefixed so they cannot clash with a caller's.
_TOKENS, _BIGRAMS, _TERMS, _FEATURES = "_clf_tokens", "_clf_bigrams", "_clf_terms", "_clf_features"
_RAW, _PROB, _PRED = "_clf_raw", "_clf_prob", "_clf_pred"
_INTERNAL = (_TOKENS, _BIGRAMS, _TERMS, _FEATURES, _RAW, _PROB, _PRED)


def pipeline(
    text_col: str = "text",
    label_col: str = "label",
    *,
    num_features: int,
    max_iter: int,
    reg_param: float,
    min_token_length: int,
) -> Pipeline:
    """The unfitted pipeline: tokens → unigrams + bigrams → hashed term counts → logistic regression.

    Args:
        text_col: the page text.
        label_col: 1.0 include, 0.0 the rest (only read when fitting).
        num_features: hashing TF buckets.
        max_iter: L-BFGS iterations of the logistic regression.
        reg_param: L2 regularization.
        min_token_length: shorter tokens are dropped before the bigrams.
    """
    return Pipeline(
        stages=[
            RegexTokenizer(
                inputCol=text_col,
                outputCol=_TOKENS,
                pattern=r"\W+",
                gaps=True,
                toLowercase=True,
                minTokenLength=min_token_length,
            ),
            NGram(n=2, inputCol=_TOKENS, outputCol=_BIGRAMS),
            # Bigrams are "a b" (with a space), tokens never hold one: the two vocabularies cannot collide.
            SQLTransformer(statement=f"SELECT *, concat({_TOKENS}, {_BIGRAMS}) AS {_TERMS} FROM __THIS__"),
            HashingTF(inputCol=_TERMS, outputCol=_FEATURES, numFeatures=num_features),
            LogisticRegression(
                featuresCol=_FEATURES,
                labelCol=label_col,
                rawPredictionCol=_RAW,
                probabilityCol=_PROB,
                predictionCol=_PRED,
                maxIter=max_iter,
                regParam=reg_param,
                elasticNetParam=0.0,
                family="binomial",
            ),
        ]
    )


@dataclass(frozen=True)
class FastText:
    """fastText ``train_supervised`` settings (softmax loss). ``ws`` only matters to fastText's unsupervised
    modes; it is kept because the BETR paper states it."""

    dim: int
    lr: float
    ws: int
    epoch: int
    min_count: int
    word_ngrams: int
    bucket: int
    threads: int


@dataclass(frozen=True)
class Classifier:
    """The page classifier's plain settings, as the methods take them (the stage unpacks its conf into these):
    the backend, ``pipeline``'s arguments (spark_lr), the fastText settings (fasttext), how many training
    pages per label (a seeded sample of each class; None: all) and the seed of that sample, of any split and
    of fastText."""

    num_features: int
    max_iter: int
    reg_param: float
    min_token_length: int
    max_docs_per_class: int | None
    seed: int
    backend: str = "spark_lr"
    fasttext: FastText | None = None

    def model(self, text_col: str = "text", label_col: str = "label") -> Pipeline:
        """The unfitted spark_lr ``pipeline`` with these settings (built when needed: it needs Spark)."""
        return pipeline(
            text_col,
            label_col,
            num_features=self.num_features,
            max_iter=self.max_iter,
            reg_param=self.reg_param,
            min_token_length=self.min_token_length,
        )


def train(df: DataFrame, model: Pipeline, text_col: str = "text", label_col: str = "label") -> PipelineModel:
    """Fit the classifier on ``df[text, label]``.

    Args:
        df: training pages; ``label`` is 1 (include) or 0, both classes present.
        model: the unfitted ``pipeline`` (built for the same ``text_col`` and ``label_col``).
        text_col, label_col: the columns read.

    Raises:
        ValueError: a class is missing (logistic regression would learn a constant).
    """
    data = df.select(text_col, F.col(label_col).cast("double").alias(label_col))
    counts = {r[label_col]: r["n"] for r in data.groupBy(label_col).agg(F.count("*").alias("n")).collect()}
    _both_labels(int(counts.get(1.0, 0)), int(counts.get(0.0, 0)))
    return model.fit(data)


def score(model: PipelineModel, df: DataFrame, out_col: str = "p_include") -> DataFrame:
    """``df`` (with the text column the model was trained on) plus ``out_col``: P(label = 1)."""
    scored = model.transform(df).withColumn(out_col, vector_to_array(F.col(_PROB)).getItem(1))
    return scored.drop(*[c for c in _INTERNAL if c in scored.columns])


# ------------------------------------------------------------------------------------------ both backends


def _both_labels(n_pos: int, n_neg: int) -> None:
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"the classifier needs pages of both labels; got {n_pos} with label 1 and {n_neg} with label 0"
        )


class PageModel:
    """A fitted page classifier: ``score`` adds ``p_include``; ``unpersist`` frees what it holds."""

    def score(self, df: DataFrame, text_col: str = "text", out_col: str = "p_include") -> DataFrame:
        raise NotImplementedError

    def unpersist(self) -> None:
        """Nothing to free (a Spark ML model lives in the driver's JVM)."""


class SparkModel(PageModel):
    """The spark_lr backend's fitted pipeline."""

    def __init__(self, model: PipelineModel):
        self.model = model

    def score(self, df: DataFrame, text_col: str = "text", out_col: str = "p_include") -> DataFrame:
        return score(self.model, df, out_col)


class FastTextModel(PageModel):
    """A fastText model file on the driver, added to the session's files so every executor fetches it once.

    Args:
        folder: the driver folder holding the training file and the model (removed by ``unpersist``).
        name: the model file's name in it, unique per fit (``SparkFiles`` names files by name).
        n_pos, n_neg: the training pages of each label.
    """

    def __init__(self, folder: str, name: str, n_pos: int, n_neg: int):
        self.folder, self.name, self.n_pos, self.n_neg = folder, name, n_pos, n_neg

    def score(self, df: DataFrame, text_col: str = "text", out_col: str = "p_include") -> DataFrame:
        name = self.name

        @F.pandas_udf("double")
        def p_include(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
            from pyspark import SparkFiles

            from udfs.fasttext_clf import FastTextScorer

            scorer = FastTextScorer(SparkFiles.get(name))
            for batch in texts:
                yield scorer.predict_batch(batch)

        return df.withColumn(out_col, p_include(F.col(text_col)))

    def unpersist(self) -> None:
        """Remove the training file and the model from the driver's folder (executors keep their copies)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _fit_fasttext(df: DataFrame, clf: Classifier, text_col: str, label_col: str) -> FastTextModel:
    """Stream the training pages to a file in seeded hash order, train fastText, add the model file."""
    import fasttext

    from jobs.methods.sampling import unit_hash
    from udfs.fasttext_clf import training_line, zero_filled_allocations

    ft = clf.fasttext
    if ft is None:
        raise ValueError("the fasttext backend needs its settings (Classifier.fasttext)")
    folder = tempfile.mkdtemp(prefix="corpuslake-pageclf-")
    try:
        train_file, counts = os.path.join(folder, "train.txt"), {0: 0, 1: 0}
        # A seeded hash order mixes the labels (fastText's SGD reads the file in order) and makes the file the
        # same on every run; the driver holds one partition at a time.
        rows = df.select(
            "doc_id",
            text_col,
            F.col(label_col).cast("int").alias("_label"),
            unit_hash(clf.seed, "fasttext").alias("_h"),
        ).orderBy("_h", "doc_id")
        with open(train_file, "w", encoding="utf-8") as f:
            for r in rows.toLocalIterator():
                label = 1 if r["_label"] == 1 else 0
                counts[label] += 1
                f.write(training_line(r[text_col], label))
        _both_labels(counts[1], counts[0])
        try:
            # Zeroed: the rows fastText leaves uninitialised would hold freed heap data (NaNs stop training).
            with zero_filled_allocations():
                model = fasttext.train_supervised(
                    input=train_file,
                    dim=ft.dim,
                    lr=ft.lr,
                    ws=ft.ws,
                    epoch=ft.epoch,
                    minCount=ft.min_count,
                    wordNgrams=ft.word_ngrams,
                    bucket=ft.bucket,
                    loss="softmax",
                    thread=ft.threads,
                    seed=clf.seed,
                    verbose=0,
                )
        except (RuntimeError, ValueError) as exc:  # e.g. no word reaches min_count
            raise ValueError(
                f"fastText could not train on {counts[0] + counts[1]:,} pages: {exc} "
                f"(min_count {ft.min_count})"
            ) from None
        name = f"pageclf-{uuid.uuid4().hex}.bin"
        model.save_model(os.path.join(folder, name))
        df.sparkSession.sparkContext.addFile(os.path.join(folder, name))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FastTextModel(folder, name, counts[1], counts[0])


def fit(df: DataFrame, clf: Classifier, text_col: str = "text", label_col: str = "label") -> PageModel:
    """Train the page classifier of ``clf.backend`` on ``df[doc_id, text, label]``.

    The caller bounds ``df`` (``clf.max_docs_per_class`` per label, a sample of a sample): fastText trains on
    the driver from it.

    Raises:
        ValueError: a class is missing, or fastText could not train (no word reaches ``min_count``).
    """
    if clf.backend == "fasttext":
        return _fit_fasttext(df, clf, text_col, label_col)
    return SparkModel(train(df, clf.model(text_col, label_col), text_col, label_col))
