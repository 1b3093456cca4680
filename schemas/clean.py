"""Intermediate shapes of the clean stage (not tables): the columns its analysis (steps 1–3) adds."""

from __future__ import annotations

from pyspark.sql.types import DoubleType, StringType, StructField

from schemas.signals import SIGNALS

# Beside each bronze row: normalized text (less the lines the c4_lines rule removed), language, the first
# step and check that dropped it (all null when none did) and the quality signals (null when normalization
# left nothing).
ANALYSIS_FIELDS = [
    StructField("norm_text", StringType(), True),
    StructField("lang", StringType(), True),
    StructField("lang_score", DoubleType(), True),
    StructField("drop_step", StringType(), True),
    StructField("drop_reason", StringType(), True),
    StructField("drop_value", DoubleType(), True),
    StructField("drop_detail", StringType(), True),
    *[StructField(s.name, DoubleType(), True) for s in SIGNALS],
]
