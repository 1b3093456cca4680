# Databricks notebook source
# MAGIC %md
# MAGIC # Domain correlations: which domains' bits-per-byte track benchmark error, and their weights
# MAGIC
# MAGIC Perplexity correlations (Thrush et al. 2024): per domain, five estimators of how strongly a lower
# MAGIC bits-per-byte on the domain goes with a lower benchmark error across the model pool, then weights
# MAGIC projected under a per-domain bound tau (linear or l2). gold.domain_correlations holds every
# MAGIC estimator under both projections; `chosen` marks the profile's pair at the time of the run.
# MAGIC
# MAGIC Parameters (Databricks widgets; locally from environment variables):
# MAGIC - `conf`: profile path (env `CORPUSLAKE_CONF`, default `conf/local.yaml`)
# MAGIC - `estimator`: spearmanr, sign_cdf, sign_sign, sign or product (env `CORPUSLAKE_ESTIMATOR`, default
# MAGIC   empty: the profile's `aggregate.domains.estimator`)
# MAGIC - `top_n`: how many domains to list at each end and to chart (env `CORPUSLAKE_TOP_N`, default `15`)
# MAGIC
# MAGIC Runs on Databricks (Repos, with the corpuslake wheel installed on the cluster) and locally after
# MAGIC `make demo`: `python notebooks/04_domain_correlations.py`.

# COMMAND ----------

from jobs.notebook import open_profile, params, shower

# Databricks widgets, else environment variables CORPUSLAKE_<NAME>
P = params(globals(), conf="conf/local.yaml", estimator="", top_n="15")
CONF, ESTIMATOR, TOP_N = P["conf"], P["estimator"], int(P["top_n"])
show = shower(globals())

# COMMAND ----------

import matplotlib.pyplot as plt
import numpy as np

from jobs.queries import sql_text
from schemas.gold import ESTIMATORS

conf, spark, lakehouse = open_profile(CONF)  # every table queryable by name: bronze.documents, …
ESTIMATOR = ESTIMATOR or conf.aggregate.domains.estimator
PROJECTION = conf.aggregate.domains.projection
if ESTIMATOR not in ESTIMATORS:
    raise ValueError(f"estimator {ESTIMATOR!r}: use one of {', '.join(ESTIMATORS)}")
print(f"estimator: {ESTIMATOR}, projection: {PROJECTION} (profile: {conf.aggregate.domains.estimator})")

# COMMAND ----------

# MAGIC %md
# MAGIC ## The weights the pipeline uses: the chosen estimator and projection, best first

# COMMAND ----------

domain_weights = spark.sql(sql_text("domain_weights")).toPandas()
show(domain_weights, TOP_N)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Top and bottom domains by estimate, for the notebook's estimator
# MAGIC
# MAGIC Rank 1 is the highest estimate (ties by domain); both projections share the ranking.

# COMMAND ----------

correlations = spark.sql(
    """
    select domain, projection, estimate, rank, weight, tau, token_share, n_models, n_docs, domain_tokens
    from gold.domain_correlations
    where estimator = :estimator
    """,
    args={"estimator": ESTIMATOR},
).toPandas()
if correlations.empty:
    raise ValueError(f"gold.domain_correlations has no rows for estimator {ESTIMATOR}: run aggregate_domains")
# one row per domain: the estimate and rank, and the weight under each projection side by side
weights = (
    correlations.pivot(index="domain", columns="projection", values="weight")
    .rename(columns=lambda p: f"weight_{p}")
    .reset_index()
)
per_domain = (
    correlations[correlations["projection"] == correlations["projection"].min()]
    .drop(columns=["projection", "weight"])
    .merge(weights, on="domain")
    .sort_values("rank", ignore_index=True)
)
top_domains = per_domain.head(TOP_N)
bottom_domains = per_domain.tail(TOP_N).iloc[::-1].reset_index(drop=True)
print(f"{len(per_domain)} domains; top {len(top_domains)} by {ESTIMATOR}:")
show(top_domains)
print(f"bottom {len(bottom_domains)} (lowest estimate first):")
show(bottom_domains)

# COMMAND ----------

# MAGIC %md
# MAGIC ## How the five estimators agree
# MAGIC
# MAGIC Per pair: the Spearman-style correlation of their domain ranks, and how many of each one's
# MAGIC top 10 the other shares.

# COMMAND ----------

estimator_agreement = spark.sql(sql_text("estimator_agreement")).toPandas()
show(estimator_agreement)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Weights of the top domains, and linear vs l2 projection
# MAGIC
# MAGIC The linear projection fills domains in rank order up to their bound tau until the weights sum to 1;
# MAGIC the l2 projection spreads weight more smoothly. Left: the `top_n` heaviest domains under the
# MAGIC profile's projection; right and in the table: the `top_n` heaviest under either projection.

# COMMAND ----------

weight_cols = [c for c in ("weight_linear", "weight_l2") if c in per_domain.columns]
print("weight sums: " + ", ".join(f"{c} {per_domain[c].sum():.6f}" for c in weight_cols))
heaviest = (
    per_domain.assign(max_weight=per_domain[weight_cols].max(axis=1))
    .sort_values(["max_weight", "rank"], ascending=[False, True])
    .head(TOP_N)
    .drop(columns="max_weight")
    .reset_index(drop=True)
)
show(heaviest[["domain", "rank", "estimate", "tau", "token_share", *weight_cols]])

fig, axes = plt.subplots(1, 2, figsize=(13, max(3.5, 0.3 * len(heaviest))))
chosen_col = f"weight_{PROJECTION}" if f"weight_{PROJECTION}" in weight_cols else weight_cols[0]
top_weighted = per_domain.sort_values([chosen_col, "rank"], ascending=[False, True]).head(TOP_N)
print(f"top {len(top_weighted)} domains hold {top_weighted[chosen_col].sum():.1%} of the {chosen_col}")
axes[0].barh(top_weighted["domain"], top_weighted[chosen_col], color="#3b75af")
axes[0].invert_yaxis()
axes[0].set_xlabel(f"weight ({chosen_col.removeprefix('weight_')})")
axes[0].set_title(f"{ESTIMATOR}: weights of the top domains")
y = np.arange(len(heaviest))
height = 0.8 / len(weight_cols)
for i, c in enumerate(weight_cols):
    axes[1].barh(y + i * height, heaviest[c], height=height, label=c.removeprefix("weight_"))
axes[1].set_yticks(y + height * (len(weight_cols) - 1) / 2, heaviest["domain"])
axes[1].invert_yaxis()
axes[1].set_xlabel("weight")
axes[1].set_title(f"{ESTIMATOR}: linear vs l2 projection")
axes[1].legend()
fig.tight_layout()
plt.show()
plt.close(fig)
