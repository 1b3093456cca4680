"""The Python worker daemon corpuslake's sessions start (``spark.python.daemon.module``): pyspark's own
daemon, started after taking Spark's own archives off the workers' ``sys.path`` when this interpreter has
pyspark installed anyway.

Why. Spark puts ``pyspark.zip``, py4j's source zip and the spark-core jar first on its Python workers'
PYTHONPATH, so a worker imports pyspark from the zip even when the interpreter (the project's virtualenv) has
it installed. pyspark 4.1's worker calls ``importlib.invalidate_caches()`` at the start of every task
(``worker_util.setup_spark_files``), and on Python 3.10 and 3.11 that re-reads the whole directory of every
zip archive with an importer (CPython gh-103200, made lazy in 3.12): pyspark.zip's 3.5 MB, once per package
imported from it. Measured on the development machine (Python 3.11.7, pyspark 4.1.1): 213 ms of CPU per
``invalidate_caches()`` inside a worker, 76% of the Python workers' CPU in tests/test_aggregate_docs.py. Spark
itself calls it only when needed from SPARK-54744 on (after 4.1). With the archives gone the call costs
microseconds. The archives hold the same pyspark and py4j the interpreter has: they are dropped only when
both import without them, and only those three kinds of file are dropped.

To start pyspark's daemon instead, set ``spark.python.daemon.module: pyspark.daemon`` in the profile's
``spark.conf``. Executors must import this module, as they must import ``udfs`` for every UDF: the project's
virtualenv (local and standalone masters) or its packed copy (``--archives``) does.
"""

from __future__ import annotations

import importlib.machinery
import os
import re
import sys

# What Spark adds to a Python worker's PYTHONPATH (PythonUtils.sparkPythonPath).
_SPARK_ARCHIVE = re.compile(r"pyspark\.zip|py4j-[\w.]+-src\.zip|spark-core_[\w.]+-[\w.\-]+\.jar")


def redundant_archives(path: list[str]) -> list[str]:
    """The entries of ``path`` that are Spark's own archives, if pyspark and py4j import without them."""
    archives = [p for p in path if _SPARK_ARCHIVE.fullmatch(os.path.basename(p))]
    rest = [p for p in path if p not in archives]
    if archives and all(importlib.machinery.PathFinder.find_spec(m, rest) for m in ("pyspark", "py4j")):
        return archives
    return []


def drop_redundant_archives() -> list[str]:
    """Take Spark's archives off ``sys.path`` (and their importers off the cache) where they are redundant."""
    drop = redundant_archives(sys.path)
    if drop:
        sys.path[:] = [p for p in sys.path if p not in drop]
        for p in drop:
            sys.path_importer_cache.pop(p, None)
        # Workers forked from the daemon inherit sys.path; the variable is for anything they start.
        kept = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in drop]
        os.environ["PYTHONPATH"] = os.pathsep.join(kept)
    return drop


if __name__ == "__main__":
    drop_redundant_archives()  # before anything imports pyspark
    from pyspark import daemon  # reads sys.argv[1] (the worker module), as when Spark starts it itself

    daemon.manager()
