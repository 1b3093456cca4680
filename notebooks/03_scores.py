# Databricks notebook source
# MAGIC %md
# MAGIC # Scores: distributions, PRRC vs length, per-domain bits-per-byte, benchmark similarity
# MAGIC
# MAGIC Parameters (Databricks widgets; locally from environment variables):
# MAGIC - `conf`: profile path (env `CORPUSLAKE_CONF`, default `conf/local.yaml`)
# MAGIC - `max_points`: documents drawn for the PRRC-vs-length scatter and Spearman correlations; all of
# MAGIC   them when there are fewer, else a fixed hash sample (env `CORPUSLAKE_MAX_POINTS`, default `50000`)
# MAGIC - `bins`: histogram bins (env `CORPUSLAKE_BINS`, default `30`)
# MAGIC
# MAGIC Runs on Databricks (Repos, with the corpuslake wheel installed on the cluster) and locally after
# MAGIC `make demo`: `python notebooks/03_scores.py`.

# COMMAND ----------

from jobs.notebook import open_profile, params, shower

# Databricks widgets, else environment variables CORPUSLAKE_<NAME>
P = params(globals(), conf="conf/local.yaml", max_points="50000", bins="30")
CONF, MAX_POINTS, BINS = P["conf"], int(P["max_points"]), int(P["bins"])
show = shower(globals())

# COMMAND ----------

import math

import matplotlib.pyplot as plt
import numpy as np

from jobs.queries import sql_text
from schemas.scores import PRRC_DIMENSIONS

conf, spark, lakehouse = open_profile(CONF)  # every table queryable by name: bronze.documents, …


def plot_histograms(values, title, xlabel):
    """One small panel per group: ``values`` maps a group name to a pandas Series; returns the counts."""
    counts = {}
    cols = min(4, max(1, len(values)))
    rows = max(1, math.ceil(len(values) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
    for ax, (name, series) in zip(axes.flat, values.items(), strict=False):  # spare panels hidden below
        counts[name], _, _ = ax.hist(series.dropna(), bins=BINS, color="#3b75af")
        ax.set_title(str(name), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
    for ax in list(axes.flat)[len(values) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    plt.show()
    plt.close(fig)
    return counts


# COMMAND ----------

# MAGIC %md ## Every score table at a glance: documents, mean and percentiles per signal and model

# COMMAND ----------

score_summary = spark.sql(sql_text("score_summary")).toPandas()
show(score_summary, 100)

# COMMAND ----------

# MAGIC %md
# MAGIC ## PRRC ratings (Meta-rater): distribution of each dimension
# MAGIC
# MAGIC Each dimension is the expected class Σ k·p(k), 0–5. scores.prrc keeps one row per document and
# MAGIC rater set; this uses the rater set that rated the most documents, and at most `max_points` of its
# MAGIC documents (all of them when there are fewer; else the first by a hash of doc_id, a fixed
# MAGIC pseudo-random sample), joined to silver.documents for their length.

# COMMAND ----------

prrc_sets = score_summary[score_summary["table_name"] == "scores.prrc"].drop_duplicates("model")
if prrc_sets.empty:
    raise ValueError("scores.prrc is empty: configure score.prrc and run the score_prrc stage")
RATERS = prrc_sets.sort_values(["docs", "model"], ascending=[False, True])["model"].iloc[0]
print(f"rater set: {RATERS} ({len(prrc_sets)} set(s) in scores.prrc)")
points = spark.sql(
    f"""
    select p.doc_id, d.n_tokens_est, {", ".join(f"p.{d}" for d in PRRC_DIMENSIONS)}
    from scores.prrc p
    join silver.documents d on p.doc_id = d.doc_id
    where p.raters = :raters
    order by xxhash64(p.doc_id), p.doc_id
    limit {MAX_POINTS}
    """,
    args={"raters": RATERS},
).toPandas()
print(f"{len(points):,} documents")
prrc_hist = plot_histograms({d: points[d] for d in PRRC_DIMENSIONS}, "PRRC ratings", "rating (0-5)")

# COMMAND ----------

# MAGIC %md
# MAGIC ## PRRC vs length
# MAGIC
# MAGIC Mean rating per length bin (a tenth of a decade of silver `n_tokens_est`) and the Spearman rank
# MAGIC correlation of each dimension with length, over the same documents.

# COMMAND ----------

points["log_tokens"] = np.log10(points["n_tokens_est"].clip(lower=1))
points["length_bin"] = np.floor(points["log_tokens"] * 10) / 10
prrc_by_length = points.groupby("length_bin")[list(PRRC_DIMENSIONS)].mean()
prrc_by_length.insert(0, "docs", points.groupby("length_bin").size())
show(prrc_by_length.reset_index())
# Spearman = Pearson over average ranks (ties share their mean rank)
prrc_length_spearman = {
    d: float(points[d].rank().corr(points["n_tokens_est"].rank())) for d in PRRC_DIMENSIONS
}
print(f"Spearman correlation with n_tokens_est over {len(points):,} documents:")
for d, rho in prrc_length_spearman.items():
    print(f"  {d:<16} {rho:+.4f}")

fig, axes = plt.subplots(1, len(PRRC_DIMENSIONS), figsize=(4 * len(PRRC_DIMENSIONS), 3.4), squeeze=False)
for ax, d in zip(axes.flat, PRRC_DIMENSIONS, strict=True):
    ax.scatter(points["log_tokens"], points[d], s=4, alpha=0.3, color="#999")
    ax.plot(prrc_by_length.index + 0.05, prrc_by_length[d], marker="o", color="#d9544d", label="bin mean")
    ax.set_title(f"{d} (ρ = {prrc_length_spearman[d]:+.2f})", fontsize=9)
    ax.set_xlabel("log10(n_tokens_est)", fontsize=8)
axes.flat[0].set_ylabel("rating")
axes.flat[0].legend(fontsize=8)
fig.tight_layout()
plt.show()
plt.close(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Bits-per-byte per domain and model
# MAGIC
# MAGIC Token-weighted: bpb = Σ nll_sum / (ln 2 · Σ n_bytes) over the domain's scored documents, so a long
# MAGIC document counts for its bytes (this is not a mean of per-document bpb). Every scored document of a
# MAGIC domain counts, per model and revision; the correlation stage's matrix (`jobs/sql/domain_bpb.sql`)
# MAGIC further keeps only documents every model scored, each model at its latest revision, and domains
# MAGIC with at least `aggregate.domains.min_docs` of them.
# MAGIC This is the saved query `bpb_by_domain` (`corpuslake sql bpb_by_domain`).

# COMMAND ----------

bpb = spark.sql(sql_text("bpb_by_domain")).toPandas()
# a model scored under several revisions shows each as model@revision
several = bpb.groupby("model_id")["revision"].transform("nunique") > 1
bpb["model"] = bpb["model_id"].where(~several, bpb["model_id"] + "@" + bpb["revision"])
bpb = bpb.sort_values(["domain", "model"], ignore_index=True)
bpb_matrix = bpb.pivot(index="domain", columns="model", values="bpb")
bpb_matrix = bpb_matrix.loc[bpb_matrix.mean(axis=1).sort_values(kind="stable").index]
bpb_matrix.insert(0, "n_docs", bpb.groupby("domain")["n_docs"].max())
print(f"{len(bpb_matrix)} domains x {bpb['model'].nunique()} models (lowest mean bpb first)")
show(bpb_matrix.round(4).reset_index(), 100)

models = sorted(bpb["model"].unique())
fig, ax = plt.subplots(figsize=(max(8, 0.22 * len(bpb_matrix)), 4.5))
x = np.arange(len(bpb_matrix))
for m in models:
    ax.plot(x, bpb_matrix[m], marker="o", markersize=3, linewidth=0.8, label=m)
ax.set_xticks(x, bpb_matrix.index, rotation=90, fontsize=7)
ax.set_ylabel("bits per byte")
ax.set_title("Token-weighted bits-per-byte per domain (domains by mean bpb)")
ax.legend(fontsize=8, ncol=min(6, len(models)))
fig.tight_layout()
plt.show()
plt.close(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Similarity to the benchmarks: max cosine per document, per benchmark
# MAGIC
# MAGIC BETR (sentence embedder) and RDS+ (LM hidden states) each score every document against each
# MAGIC benchmark's examples; `max_cosine` is the best match.

# COMMAND ----------

show(score_summary[score_summary["table_name"] == "scores.similarity"].reset_index(drop=True))
# every benchmark's rows of at most `max_points` documents (the same hash order as above)
n_benchmarks = int((score_summary["table_name"] == "scores.similarity").sum())
similarity = spark.sql(f"""
    select concat(method, ':', benchmark) as benchmark, model_id, doc_id, max_cosine
    from scores.similarity
    order by xxhash64(doc_id), doc_id, benchmark, method, model_id
    limit {MAX_POINTS * max(n_benchmarks, 1)}
""").toPandas()
similarity_hist = plot_histograms(
    {b: part["max_cosine"] for b, part in similarity.groupby("benchmark")},
    "max cosine to each benchmark (method:benchmark)",
    "max cosine",
)
