# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze: what ingest accepted, what it rejected, and why
# MAGIC
# MAGIC Parameters (Databricks widgets; locally from environment variables):
# MAGIC - `conf`: profile path (env `CORPUSLAKE_CONF`, default `conf/local.yaml`)
# MAGIC - `top_n`: how many domains to list (env `CORPUSLAKE_TOP_N`, default `20`)
# MAGIC
# MAGIC Runs on Databricks (Repos, with the corpuslake wheel installed on the cluster) and locally after
# MAGIC `make demo`: `python notebooks/01_bronze.py`.

# COMMAND ----------

from jobs.notebook import open_profile, params, shower

# Databricks widgets, else environment variables CORPUSLAKE_<NAME>
P = params(globals(), conf="conf/local.yaml", top_n="20")
CONF, TOP_N = P["conf"], int(P["top_n"])
show = shower(globals())

# COMMAND ----------

from jobs.queries import sql_text

conf, spark, lakehouse = open_profile(CONF)  # every table queryable by name: bronze.documents, …

# COMMAND ----------

# MAGIC %md ## Reconciliation of the latest ingest runs: records read = accepted + rejected

# COMMAND ----------

runs = spark.sql("""
    select run_id, status, rows_in, tables_written, ended_at
    from audit.runs
    where stage = 'ingest' and status <> 'running'
    order by ended_at desc
""").toPandas()
show(runs, 10)

# COMMAND ----------

# MAGIC %md ## Rejects by reason, with an example of each

# COMMAND ----------

rejects_by_reason = spark.sql("""
    select reason, count(*) as records, min_by(detail, source_file) as example_detail
    from bronze.rejects
    group by reason
    order by records desc, reason
""").toPandas()
show(rejects_by_reason)

# COMMAND ----------

# MAGIC %md ## Accepted documents per input file and per registered domain

# COMMAND ----------

docs_by_file = spark.sql("""
    select regexp_extract(source_file, '[^/]+$', 0) as file, count(*) as docs,
           round(avg(n_bytes)) as avg_bytes, max(n_bytes) as max_bytes
    from bronze.documents
    group by 1
    order by 1
""").toPandas()
show(docs_by_file)
top_domains = spark.sql(f"""
    select domain, count(*) as docs, sum(n_bytes) as bytes
    from bronze.documents
    group by domain
    order by docs desc, domain
    limit {TOP_N}
""").toPandas()
show(top_domains)

# COMMAND ----------

# MAGIC %md ## Gate results (expectation suites) of every stage

# COMMAND ----------

gates = spark.sql(sql_text("gate_results")).toPandas()  # failures first, then newest
show(gates, 20)
