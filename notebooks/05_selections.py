# Databricks notebook source
# MAGIC %md
# MAGIC # Selections: what each strategy picked, how much the strategies overlap, and from which domains
# MAGIC
# MAGIC gold.selection holds the latest selection of every strategy (betr, pplcorr, metarater, rds, random,
# MAGIC blend): documents in pick order under the profile's token budget.
# MAGIC
# MAGIC Parameters (Databricks widgets; locally from environment variables):
# MAGIC - `conf`: profile path (env `CORPUSLAKE_CONF`, default `conf/local.yaml`)
# MAGIC - `top_n`: domains shown in the composition chart, the rest as `other` (env `CORPUSLAKE_TOP_N`,
# MAGIC   default `10`)
# MAGIC
# MAGIC Runs on Databricks (Repos, with the corpuslake wheel installed on the cluster) and locally after
# MAGIC `make demo`: `python notebooks/05_selections.py`.

# COMMAND ----------

from jobs.notebook import open_profile, params, shower

# Databricks widgets, else environment variables CORPUSLAKE_<NAME>
P = params(globals(), conf="conf/local.yaml", top_n="10")
CONF, TOP_N = P["conf"], int(P["top_n"])
show = shower(globals())

# COMMAND ----------

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jobs.queries import sql_text

conf, spark, lakehouse = open_profile(CONF)  # every table queryable by name: bronze.documents, …
BUDGET = conf.select.token_budget

# COMMAND ----------

# MAGIC %md
# MAGIC ## Per strategy: documents, tokens, share of the token budget, domains
# MAGIC
# MAGIC The budget is the profile's `select.token_budget`; a pick stops at the first document that would
# MAGIC pass it, so a strategy usually falls a little short. Documents without a domain count as one
# MAGIC domain, `(none)`.

# COMMAND ----------

selection_composition = spark.sql(sql_text("selection_composition")).toPandas()
if selection_composition.empty:
    raise ValueError("gold.selection is empty: run the select stage first")
totals = (
    selection_composition.groupby("strategy")
    .agg(docs=("docs", "sum"), tokens=("tokens", "sum"), domains=("domain", "nunique"))
    .astype("int64")
)
totals["budget_share"] = totals["tokens"] / BUDGET
STRATEGIES = list(totals.index)
print(f"token budget: {BUDGET:,} per strategy")
show(totals.reset_index())

# COMMAND ----------

# MAGIC %md ## Composition: what each strategy selected, per domain

# COMMAND ----------

show(selection_composition, 100)

# exact shares (the saved query rounds them); the TOP_N domains with the most tokens over all strategies
composition = selection_composition.assign(
    share=selection_composition["tokens"] / selection_composition["strategy"].map(totals["tokens"])
)
by_tokens = composition.groupby("domain")["tokens"].sum().sort_values(ascending=False, kind="stable")
top = list(by_tokens.index[:TOP_N])
columns = top + (["other"] if len(by_tokens) > len(top) else [])
domain_shares = (
    composition.assign(domain=composition["domain"].where(composition["domain"].isin(top), "other"))
    .pivot_table(index="strategy", columns="domain", values="share", aggfunc="sum", fill_value=0.0)
    .reindex(index=STRATEGIES, columns=columns)
    .fillna(0.0)
)
show(domain_shares.round(4).reset_index())

fig, ax = plt.subplots(figsize=(9, 0.6 * len(STRATEGIES) + 2.5))
left = np.zeros(len(STRATEGIES))
colors = plt.get_cmap("tab20").colors
for i, domain in enumerate(domain_shares.columns):
    color = "#cccccc" if domain == "other" else colors[i % len(colors)]
    ax.barh(STRATEGIES, domain_shares[domain], left=left, label=domain, color=color)
    left += domain_shares[domain].to_numpy()
ax.invert_yaxis()
ax.set_xlabel("share of the strategy's tokens")
ax.set_title(f"Domain composition per strategy (top {len(top)} domains)")
ax.legend(fontsize=7, bbox_to_anchor=(1.01, 1), loc="upper left")
fig.tight_layout()
plt.show()
plt.close(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Overlap between strategies
# MAGIC
# MAGIC Jaccard index of the selected documents per pair (pairs that share nothing are 0), and what share
# MAGIC of each strategy's documents (row) another strategy (column) also picked.

# COMMAND ----------

selection_overlap = spark.sql(sql_text("selection_overlap")).toPandas()
show(selection_overlap)
shared = {s: {t: 0 for t in STRATEGIES} for s in STRATEGIES}
for row in selection_overlap.itertuples():
    shared[row.strategy_a][row.strategy_b] = shared[row.strategy_b][row.strategy_a] = int(row.shared_docs)
docs = totals["docs"]
jaccard = pd.DataFrame(
    [
        [1.0 if s == t else shared[s][t] / (docs[s] + docs[t] - shared[s][t]) for t in STRATEGIES]
        for s in STRATEGIES
    ],
    index=STRATEGIES,
    columns=STRATEGIES,
)
also_picked = pd.DataFrame(
    [[1.0 if s == t else shared[s][t] / docs[s] for t in STRATEGIES] for s in STRATEGIES],
    index=STRATEGIES,
    columns=STRATEGIES,
)
print("Jaccard:")
show(jaccard.round(4).reset_index(names="strategy"))
print("share of the row strategy's documents the column strategy also picked:")
show(also_picked.round(4).reset_index(names="strategy"))

fig, axes = plt.subplots(1, 2, figsize=(1.8 * len(STRATEGIES) + 4, 0.8 * len(STRATEGIES) + 1.5))
for ax, matrix, title in [
    (axes[0], jaccard, "Jaccard index"),
    (axes[1], also_picked, "share of row's picks also picked by column"),
]:
    im = ax.imshow(matrix.to_numpy(), vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(STRATEGIES)), STRATEGIES, rotation=45, ha="right")
    ax.set_yticks(range(len(STRATEGIES)), STRATEGIES)
    for (i, j), v in np.ndenumerate(matrix.to_numpy()):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8, color="white" if v > 0.6 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()
plt.show()
plt.close(fig)
