# Databricks notebook source
# MAGIC %md
# MAGIC # The corpus and its filter funnel: what clean kept, what it dropped, and why
# MAGIC
# MAGIC Parameters (Databricks widgets; locally from environment variables):
# MAGIC - `conf`: profile path (env `CORPUSLAKE_CONF`, default `conf/local.yaml`)
# MAGIC - `top_n`: how many domains to list (env `CORPUSLAKE_TOP_N`, default `20`)
# MAGIC - `examples`: dropped documents shown per clean step (env `CORPUSLAKE_EXAMPLES`, default `3`)
# MAGIC
# MAGIC Runs on Databricks (Repos, with the corpuslake wheel installed on the cluster) and locally after
# MAGIC `make demo`: `python notebooks/02_corpus_funnel.py`.

# COMMAND ----------

from jobs.notebook import open_profile, params, shower

# Databricks widgets, else environment variables CORPUSLAKE_<NAME>
P = params(globals(), conf="conf/local.yaml", top_n="20", examples="3")
CONF, TOP_N, EXAMPLES = P["conf"], int(P["top_n"]), int(P["examples"])
show = shower(globals())

# COMMAND ----------

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jobs.queries import sql_text
from schemas.silver import STEPS

conf, spark, lakehouse = open_profile(CONF)  # every table queryable by name: bronze.documents, …

# COMMAND ----------

# MAGIC %md
# MAGIC ## The funnel: records read → ingest → each clean step → silver.documents
# MAGIC
# MAGIC Clean recomputes silver from all of bronze, so the counts reconcile:
# MAGIC records read = rejected + dropped by the clean steps + kept.

# COMMAND ----------

funnel = spark.sql(sql_text("funnel")).toPandas()
show(funnel)
kept = int(funnel["remaining"].iloc[-1])
read = int(funnel["remaining"].iloc[0])
print(f"records read {read:,} → kept {kept:,} ({kept / max(read, 1):.1%})")

fig, ax = plt.subplots(figsize=(9, 4))
labels = ["read", *("− " + funnel["step"].iloc[1:])]  # each bar: what is left after removing that step
bars = ax.bar(labels, funnel["remaining"], color=["#777"] * 2 + ["#3b75af"] * (len(funnel) - 2))
ax.bar_label(bars, labels=[f"{v:,}" for v in funnel["remaining"]], fontsize=8)
ax.set_ylabel("documents remaining")
ax.set_title("Documents remaining after each step")
ax.tick_params(axis="x", rotation=30)
fig.tight_layout()
plt.show()
plt.close(fig)

# COMMAND ----------

# MAGIC %md ## Why documents were dropped: per clean step and rule

# COMMAND ----------

filter_reasons = spark.sql(sql_text("filter_reasons")).toPandas()
show(filter_reasons)

# COMMAND ----------

# MAGIC %md
# MAGIC ## What was kept: documents and tokens per domain, source and language
# MAGIC
# MAGIC Tokens are silver's estimate `n_tokens_est` = ceil(bytes / 4). Documents without a domain count
# MAGIC as `(none)`. The saved query `corpus_composition` (`corpuslake sql corpus_composition`).

# COMMAND ----------

composition = spark.sql(sql_text("corpus_composition")).toPandas()  # most tokens first


def breakdown(dimension):
    """One dimension of the composition: its value, docs, tokens and token_share (rounded to 4 places)."""
    part = composition[composition["dimension"] == dimension].drop(columns="dimension")
    return part.rename(columns={"value": dimension}).reset_index(drop=True)


by_domain, by_source, by_lang = breakdown("domain"), breakdown("source"), breakdown("lang")
print(
    f"{int(by_source['docs'].sum()):,} documents, {int(by_source['tokens'].sum()):,} tokens, "
    f"{len(by_domain):,} domains, {len(by_source)} sources, {len(by_lang)} languages"
)
show(by_domain, TOP_N)
show(by_source)
show(by_lang)

top = by_domain.head(TOP_N).iloc[::-1]
fig, ax = plt.subplots(figsize=(8, max(3, 0.28 * len(top))))
ax.barh(top["domain"], top["tokens"], color="#3b75af")
ax.set_xlabel("tokens (n_tokens_est)")
ax.set_title(f"Top {len(top)} domains by tokens kept")
fig.tight_layout()
plt.show()
plt.close(fig)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Examples of dropped documents, per step
# MAGIC
# MAGIC silver.filtered has the rule and its value; the text comes from bronze.documents.

# COMMAND ----------

examples = spark.sql(f"""
    with picked as (
      select f.step, f.reason, f.value, f.doc_id, f.url, f.survivor_id,
             row_number() over (partition by f.step order by xxhash64(f.doc_id), f.doc_id) as k
      from silver.filtered f
    )
    select p.step, p.k, p.reason, round(p.value, 4) as value, p.url, p.survivor_id, p.doc_id,
           left(regexp_replace(b.text, '\\\\s+', ' '), 160) as snippet
    from picked p
    join bronze.documents b on p.doc_id = b.doc_id
    where p.k <= {EXAMPLES}
""").toPandas()
examples["step"] = pd.Categorical(examples["step"], categories=list(STEPS), ordered=True)
examples = examples.sort_values(["step", "k"], ignore_index=True)
show(examples, len(STEPS) * EXAMPLES)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Length: kept vs dropped
# MAGIC
# MAGIC Every bronze document is either kept (silver.documents) or dropped by one step (silver.filtered).
# MAGIC A dropped document has no silver row, so its estimate is the same formula over the text as
# MAGIC ingested: ceil(bronze n_bytes / 4). Bins are a tenth of a decade of tokens.

# COMMAND ----------

lengths = spark.sql("""
    with docs as (
      select coalesce(f.step, 'kept') as status,
             coalesce(s.n_tokens_est, cast(ceil(b.n_bytes / 4) as bigint)) as tokens
      from bronze.documents b
      left join silver.documents s on b.doc_id = s.doc_id
      left join silver.filtered f on b.doc_id = f.doc_id
    )
    select status, cast(floor(10 * log10(greatest(tokens, 1))) as int) as bin, count(*) as docs,
           sum(tokens) as tokens
    from docs
    group by status, bin
""").toPandas()
length_summary = (
    lengths.groupby("status")[["docs", "tokens"]]
    .sum()
    .reindex(["kept", *STEPS])
    .dropna()
    .astype("int64")
    .reset_index()
)
length_summary["mean_tokens"] = (length_summary["tokens"] / length_summary["docs"]).round(1)
show(length_summary)

kept_mask = lengths["status"] == "kept"
bins = np.arange(lengths["bin"].min(), lengths["bin"].max() + 2) / 10
fig, ax = plt.subplots(figsize=(8, 4))
for label, part, color in [
    ("kept", lengths[kept_mask], "#3b75af"),
    ("dropped", lengths[~kept_mask], "#d9544d"),
]:
    per_bin = part.groupby("bin")["docs"].sum()
    ax.hist(per_bin.index / 10, bins=bins, weights=per_bin.values, alpha=0.6, label=label, color=color)
ax.set_xlabel("log10(tokens)")
ax.set_ylabel("documents")
ax.set_title("Document length, kept vs dropped")
ax.legend()
fig.tight_layout()
plt.show()
plt.close(fig)
