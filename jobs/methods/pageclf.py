"""The page classifier (pageclf): a fastText-like bigram model on Spark ML, shared by BETR and the
perplexity-correlation page step.

fastText's supervised mode is a linear model over hashed unigrams and bigrams. The distributed stand-in:

  RegexTokenizer (lowercase, split on non-word characters) → NGram(2) → unigrams ++ bigrams
  → HashingTF (``num_features`` buckets) → LogisticRegression (L-BFGS, L2 ``reg_param``)

Training and scoring are deterministic: hashing is MurmurHash3 and L-BFGS starts from zero, so the same rows
in the same partitions give the same model. The label is 1 for pages to include, 0 for the rest; ``score``
adds ``p_include``, the model's probability of label 1.
"""

from __future__ import annotations

from dataclasses import dataclass

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
class Classifier:
    """The page classifier's plain settings, as the methods take them (the stage unpacks its conf into these):
    ``pipeline``'s arguments, how many training pages per label (a seeded sample of each class; None: all)
    and the seed of that sample and of any split."""

    num_features: int
    max_iter: int
    reg_param: float
    min_token_length: int
    max_docs_per_class: int | None
    seed: int

    def model(self, text_col: str = "text", label_col: str = "label") -> Pipeline:
        """The unfitted ``pipeline`` with these settings (built when needed: it needs a running Spark)."""
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
    if counts.get(1.0, 0) == 0 or counts.get(0.0, 0) == 0:
        raise ValueError(
            f"the classifier needs pages of both labels; got {int(counts.get(1.0, 0))} with label 1 and "
            f"{int(counts.get(0.0, 0))} with label 0"
        )
    return model.fit(data)


def score(model: PipelineModel, df: DataFrame, out_col: str = "p_include") -> DataFrame:
    """``df`` (with the text column the model was trained on) plus ``out_col``: P(label = 1)."""
    scored = model.transform(df).withColumn(out_col, vector_to_array(F.col(_PROB)).getItem(1))
    return scored.drop(*[c for c in _INTERNAL if c in scored.columns])
