"""The report's data: saved queries and the histogram SQL, run against the lakehouse passed in.

The report binds the table names of its queries to the lakehouse's snapshots (``Lakehouse.read``, Spark's
Parquet or Delta reader) through temporary views: the same rows as the catalog names that ``connect``
registers, read faster on the embedded engine (its SQL names go through a Python data source), and always
the tables of the lakehouse passed in, whatever the session's names point at. String literals and comments
of the SQL are left as they are.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd
from pyspark.sql import SparkSession

from jobs.config import Conf
from jobs.queries import sql_text

HIST_BINS = 30
_SQL_SKIP = re.compile(r"('(?:[^'\\]|\\.)*'|--[^\n]*)")
_TABLE_NAME = re.compile(r"(?<![\w.`])([a-z_]+)\.([a-z_]+)(?![\w`])")
VIEW_PREFIX = "corpuslake_report__"

# Histograms of the per-document scores, binned in Spark so only HIST_BINS rows per series reach the driver.
# One panel per PRRC dimension, bpb with one series per model, max cosine per method with one series per
# benchmark; bins are shared by the series of a panel.
HISTOGRAM_SQL = f"""
with long as (
  select 'prrc' as figure, stack(4, 'professionalism', professionalism, 'readability', readability,
         'reasoning', reasoning, 'cleanliness', cleanliness) as (panel, value), 'rating' as series
  from scores.prrc
  union all
  select 'bpb', 'bits per byte', bpb, model_id from scores.perplexity
  union all
  select 'cosine', method, max_cosine, benchmark from scores.similarity
),
bounds as (
  select figure, panel, min(value) as lo, max(value) as hi from long where not isnan(value) group by 1, 2
)
select l.figure, l.panel, l.series, b.lo, b.hi,
       case when b.hi > b.lo then least(cast(floor((l.value - b.lo) / (b.hi - b.lo) * {HIST_BINS}) as int),
                                        {HIST_BINS - 1})
            else 0 end as bin,
       count(*) as n
from long l join bounds b on l.figure = b.figure and l.panel = b.panel
where not isnan(l.value)
group by 1, 2, 3, 4, 5, 6
order by 1, 2, 3, 6
"""


def bind_tables(sql: str, views: dict[str, str]) -> str:
    """``sql`` with each table name of ``views`` (``gold.selection``) replaced by its view's name.

    Quoted strings and ``--`` comments are not touched (``'scores.prrc' as table_name`` stays a label).
    """
    parts = _SQL_SKIP.split(sql)
    for i in range(0, len(parts), 2):  # split keeps the skipped pieces at the odd indices
        parts[i] = _TABLE_NAME.sub(lambda m: views.get(m.group(0), m.group(0)), parts[i])
    return "".join(parts)


@dataclass
class ReportContext:
    """One rendering: the session, lakehouse and conf, the temporary views it made, images per section."""

    spark: SparkSession
    lakehouse: object
    conf: Conf
    images: dict[str, int] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)

    def sql(self, text: str) -> pd.DataFrame:
        """Rows of a query, its table names read from the lakehouse's latest snapshots."""
        from jobs.catalog import all_specs

        for spec in all_specs():
            if spec.name not in self.views and re.search(
                rf"(?<![\w.`]){re.escape(spec.name)}(?![\w`])", text
            ):
                view = VIEW_PREFIX + spec.name.replace(".", "__")
                self.lakehouse.read(spec).createOrReplaceTempView(view)
                self.views[spec.name] = view
        return self.spark.sql(bind_tables(text, self.views)).toPandas()

    def query(self, name: str) -> pd.DataFrame:
        """A saved query's rows (``jobs/sql/<name>.sql``)."""
        return self.sql(sql_text(name))

    def drop_views(self) -> None:
        for view in self.views.values():
            self.spark.catalog.dropTempView(view)
        self.views.clear()


# What each section reads: saved queries (by name) and the extra data below.
NEEDS: dict[str, tuple[str, ...]] = {
    "summary": ("funnel", "kept", "selected", "selection_composition", "gate_results"),
    "funnel": ("funnel", "kept", "filter_reasons"),
    "scores": ("histograms", "score_summary"),
    "domains": ("domain_weights", "estimator_agreement"),
    "rater-weights": ("rater_weights",),
    "selection": ("selection_composition", "selection_overlap"),
    "evaluation": ("evaluation",),
    "gates": ("gate_results",),
    "versions": ("table_versions", "runs"),
}


def load(ctx: ReportContext, names: Iterable[str]) -> dict:
    """The data ``names`` (see ``NEEDS``) as DataFrames, plus ``generated_at``."""
    from schemas import gold, silver

    data: dict = {"generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    for name in dict.fromkeys(names):
        if name == "kept":
            # Counted by the lakehouse reader (Parquet statistics, no text read); None: clean never ran.
            n = ctx.lakehouse.read(silver.DOCUMENTS).count()
            filtered = ctx.lakehouse.read(silver.FILTERED).count()
            data[name] = n if n or filtered else None
        elif name == "selected":
            data[name] = ctx.lakehouse.read(gold.SELECTION).select("doc_id").distinct().count()
        elif name == "histograms":
            data[name] = ctx.sql(HISTOGRAM_SQL)
        else:
            data[name] = ctx.query(name)
    return data


def selection_totals(comp: pd.DataFrame, budget: int | None) -> pd.DataFrame:
    """Per strategy: documents, tokens, domains and the share of the token budget used."""
    tot = comp.groupby("strategy", sort=True).agg(
        docs=("docs", "sum"), tokens=("tokens", "sum"), domains=("domain", "nunique")
    )
    tot = tot.reset_index()
    tot["budget"] = budget
    tot["pct_of_budget"] = (100 * tot["tokens"] / budget).round(2) if budget else None
    return tot
