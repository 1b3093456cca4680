"""The page classifier with the ``aggregate.classifier`` settings (``BigramConf``): the conf-reading side of
``jobs.methods.pageclf``, whose transforms take plain arguments. ``jobs.aggregate_docs`` trains and scores
through it.
"""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame

from jobs.config import BigramConf
from jobs.methods import pageclf
from jobs.methods.pageclf import score

__all__ = ["score", "train"]


def train(df: DataFrame, conf: BigramConf, text_col: str = "text", label_col: str = "label") -> PipelineModel:
    """``pageclf.train`` on ``df[text, label]`` with the ``aggregate.classifier`` settings.

    Raises:
        ValueError: a class is missing (logistic regression would learn a constant).
    """
    model = pageclf.pipeline(
        text_col,
        label_col,
        num_features=conf.num_features,
        max_iter=conf.max_iter,
        reg_param=conf.reg_param,
        min_token_length=conf.min_token_length,
    )
    return pageclf.train(df, model, text_col, label_col)
