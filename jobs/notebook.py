"""What every notebook in ``notebooks/`` starts with: its parameters, a table display, the lakehouse.

The notebooks run on Databricks (Repos, with the corpuslake wheel on the cluster), where ``dbutils`` and
``display`` are globals of the notebook, and locally as scripts (``python notebooks/NN_x.py``), where
parameters come from ``CORPUSLAKE_<NAME>`` environment variables and tables print as text. Each helper
takes the notebook's ``globals()`` to tell the two apart.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def params(namespace: dict, **defaults: str) -> dict[str, str]:
    """The notebook's parameters: Databricks widgets where they exist, else environment variables.

    Args:
        namespace: The notebook's ``globals()``; on Databricks it holds ``dbutils``.
        **defaults: Each parameter's name and default value (a string, as widgets hold strings).

    Returns:
        Each parameter's value as a string, by name. With ``dbutils`` in ``namespace`` a text widget is
        created per parameter (with its default) and its current value returned; otherwise the value is
        the environment variable ``CORPUSLAKE_<NAME>`` (name upper-cased), else the default.
    """
    dbutils = namespace.get("dbutils")
    if dbutils is not None:
        for name, default in defaults.items():
            dbutils.widgets.text(name, default)
        return {name: dbutils.widgets.get(name) for name in defaults}
    return {name: os.environ.get(f"CORPUSLAKE_{name.upper()}", default) for name, default in defaults.items()}


def shower(namespace: dict, n: int = 50) -> Callable[..., None]:
    """A ``show(df, n=n)`` function for the notebook: Databricks' ``display``, else a text table.

    Args:
        namespace: The notebook's ``globals()``; on Databricks it holds ``display``.
        n: Default number of rows a text table prints.

    Returns:
        ``show(df, n=n)``: ``display(df)`` when ``namespace`` has ``display``; otherwise
        ``df.show(n, truncate=60)`` for a Spark DataFrame, or the first ``n`` rows of a pandas DataFrame
        printed with columns cut at 60 characters.
    """
    display = namespace.get("display")

    def show(df: Any, n: int = n) -> None:
        if display is not None:
            display(df)
        elif hasattr(df, "show"):
            df.show(n, truncate=60)
        else:
            print(df.head(n).to_string(max_colwidth=60))

    return show


def open_profile(conf_path: str) -> tuple[Any, Any, Any]:
    """Load a profile and connect to its lakehouse, every table queryable by name; print where it is.

    Args:
        conf_path: Path of the profile (``conf/local.yaml``).

    Returns:
        ``(conf, spark, lakehouse)``: the loaded profile, the Spark session and the lakehouse.
    """
    from jobs.catalog import connect
    from jobs.config import load_conf

    conf = load_conf(conf_path)
    spark, lakehouse = connect(conf)
    print(f"lakehouse: {lakehouse.warehouse} ({lakehouse.engine} engine)")
    return conf, spark, lakehouse
