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

import os

try:  # Databricks
    dbutils.widgets.text("conf", "conf/local.yaml")  # noqa: F821
    dbutils.widgets.text("top_n", "20")  # noqa: F821
    CONF = dbutils.widgets.get("conf")  # noqa: F821
    TOP_N = int(dbutils.widgets.get("top_n"))  # noqa: F821
except NameError:  # local run: no dbutils
    CONF = os.environ.get("CORPUSLAKE_CONF", "conf/local.yaml")
    TOP_N = int(os.environ.get("CORPUSLAKE_TOP_N", "20"))


def show(df, n=50):
    """Databricks' display where it exists, a text table elsewhere."""
    try:
        display(df)  # noqa: F821
    except NameError:
        df.show(n, truncate=60)


# COMMAND ----------

from jobs.config import load_conf
from jobs.session import get_spark
from jobs.tables import open_lakehouse
from schemas import audit, bronze

conf = load_conf(CONF)
spark = get_spark(conf.spark, conf.storage.engine)
lakehouse = open_lakehouse(spark, conf.storage.warehouse, conf.storage.engine, conf.storage.storage_options)
lakehouse.register_sql([*bronze.TABLES, *audit.TABLES])
print(f"lakehouse: {lakehouse.warehouse} ({lakehouse.engine} engine)")

# COMMAND ----------

# MAGIC %md ## Reconciliation of the latest ingest runs: records read = accepted + rejected

# COMMAND ----------

runs = spark.sql("""
    select run_id, status, rows_in, tables_written, ended_at
    from audit.runs
    where stage = 'ingest' and status <> 'running'
    order by ended_at desc
""")
show(runs, 10)

# COMMAND ----------

# MAGIC %md ## Rejects by reason, with an example of each

# COMMAND ----------

rejects_by_reason = spark.sql("""
    select reason, count(*) as records, min_by(detail, source_file) as example_detail
    from bronze.rejects
    group by reason
    order by records desc, reason
""")
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
""")
show(docs_by_file)
top_domains = spark.sql(f"""
    select domain, count(*) as docs, sum(n_bytes) as bytes
    from bronze.documents
    group by domain
    order by docs desc, domain
    limit {TOP_N}
""")
show(top_domains)

# COMMAND ----------

# MAGIC %md ## Table versions and their gates

# COMMAND ----------

gates = spark.sql("""
    select table_name, run_id, success, evaluated, unsuccessful, observed_rows, table_version, validated_at
    from audit.expectations
    order by validated_at desc
""")
show(gates, 20)
