"""The SQL files under ``jobs/sql/``: users read and reuse them; stages run them through here.

A query names its inputs as temporary views (``{name}`` placeholders are not used: views keep the SQL
runnable as-is in a notebook once the views exist) and takes scalar parameters as ``:name`` named
parameters of ``spark.sql``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_text(name: str) -> str:
    """The text of ``jobs/sql/<name>.sql``."""
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no query {name!r}: {path} does not exist")
    return path.read_text(encoding="utf-8")


SAVED_MARK = "-- query:"


def saved_queries() -> dict[str, str]:
    """The queries users run as they are (``corpuslake sql NAME``, notebooks, the report): name → about.

    They are the files of ``jobs/sql/`` whose first line is ``-- query: <what it shows>``; they read the
    tables by name (``gold.selection``) and take no parameters. The other files are stage steps over
    temporary views.
    """
    out = {}
    for path in sorted(SQL_DIR.glob("*.sql")):
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        if first.startswith(SAVED_MARK):
            out[path.stem] = first[len(SAVED_MARK) :].strip()
    return out


def run_sql(spark: SparkSession, name: str, views: dict[str, DataFrame], **params) -> DataFrame:
    """Run ``jobs/sql/<name>.sql`` with ``views`` registered as temporary views and ``params`` bound.

    Args:
        spark: the session.
        name: the query file's stem.
        views: view name → DataFrame, registered (replacing any view of that name) before the query runs.
        params: named parameters (``:min_docs`` in the SQL).
    """
    for view, df in views.items():
        df.createOrReplaceTempView(view)
    return spark.sql(sql_text(name), args=params or None)


def table_versions(lakehouse, specs) -> str:
    """JSON ``{"table": version}`` of each table's latest snapshot: what a run read."""
    return json.dumps({s.name: lakehouse.version(s) for s in specs}, sort_keys=True)


def parse_versions(text, where: str) -> dict:
    """A recorded ``table_versions`` value as a dict.

    Raises:
        InputError: it is not a JSON object (``where`` names the table and strategy in the message).
    """
    from jobs.runtime import InputError

    try:
        obj = json.loads(text)
    except (TypeError, json.JSONDecodeError):
        obj = None
    if not isinstance(obj, dict):
        raise InputError(f"{where}: table_versions is not a JSON object: {text!r}")
    return obj
