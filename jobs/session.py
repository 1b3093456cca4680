"""The one SparkSession factory every job and notebook uses."""

from __future__ import annotations

import contextlib
import os
import sys

from pyspark import SparkConf as PySparkConf
from pyspark.sql import SparkSession

from jobs.config import SparkConf
from jobs.jars import delta_jars

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def delta_classes_loadable(spark: SparkSession) -> bool:
    """Whether Delta Lake's Spark classes are on this session's classpath and its extension is active."""
    try:
        jvm = spark.sparkContext._jvm  # classic sessions only; Spark Connect has no JVM handle
        jvm.java.lang.Class.forName(
            "io.delta.tables.DeltaTable", False, jvm.Thread.currentThread().getContextClassLoader()
        )
    except Exception:
        return False
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")


def delta_jars_present(conf: SparkConf) -> bool:
    """Before the JVM starts: will Delta's jars be on its classpath (cache, jars, packages)?"""
    import glob

    import pyspark

    if delta_jars():
        return True
    homes = [os.environ.get("SPARK_HOME", ""), os.path.dirname(pyspark.__file__)]
    if any(glob.glob(os.path.join(h, "jars", "delta-spark_*.jar")) for h in homes if h):
        return True
    wanted = " ".join(conf.conf.get(k, "") for k in ("spark.jars", "spark.jars.packages"))
    return "delta-spark" in wanted or bool(conf.delta_packages)


def _standalone_settings(master: str) -> dict[str, str]:
    """Settings for a standalone master (``spark://host:port``) with the driver on this machine.

    Executors' Python workers run this interpreter (the project's virtualenv): right for a cluster on this
    machine (``python -m jobs.cluster start``); elsewhere the profile's ``spark.conf`` or spark-submit's
    ``--conf spark.pyspark.python=…`` (the ``--archives`` recipe) wins. A master on the loopback address
    can only reach executors there, so the driver binds and advertises 127.0.0.1 too.
    """
    # get_spark has set PYSPARK_PYTHON (to sys.executable unless the environment named another).
    settings = {"spark.pyspark.python": os.environ.get("PYSPARK_PYTHON") or sys.executable}
    host = master[len("spark://") :].split(",", 1)[0].rsplit(":", 1)[0]
    if host in ("127.0.0.1", "localhost"):
        settings["spark.driver.host"] = "127.0.0.1"
        settings["spark.driver.bindAddress"] = "127.0.0.1"
    return settings


@contextlib.contextmanager
def session_settings(spark, settings: dict[str, str]):
    """``settings`` on the session for the block, then each key as it was before (unset if it was unset)."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def get_spark(conf: SparkConf, engine: str = "auto") -> SparkSession:
    """Reuse the active session (spark-submit, Databricks, a notebook) or build a local one.

    Args:
        conf: the profile's ``spark`` section.
        engine: the storage engine asked for. ``delta-spark``, or any engine where Delta's jars are present
            (``make install`` caches them), adds Delta's extension and catalog: the cached jars with
            ``spark.jars``, or ``conf.delta_packages`` Maven coordinates.

    Returns:
        A session with Arrow enabled, microsecond Parquet timestamps and UTC session time.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    # Executors must run the same interpreter as the driver (the venv), or they miss our packages.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = {
        "spark.master": conf.master,
        "spark.app.name": conf.app_name,
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "false",
        "spark.sql.shuffle.partitions": str(conf.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.session.timeZone": "UTC",
        # Score tables have dozens of columns; the default (25) only truncates plan strings with a warning.
        "spark.sql.debug.maxToStringFields": "200",
        "spark.ui.enabled": str(conf.ui).lower(),
        "spark.ui.showConsoleProgress": str(conf.progress).lower(),
        # Staged Parquet folders hold data files only: no _SUCCESS markers to skip when committing.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.hadoop.parquet.summary.metadata.level": "NONE",
        # Python workers without Spark's redundant archives on sys.path: 0.2 s less CPU per Python task on
        # Python 3.11 (udfs/pydaemon.py says why; the profile's spark.conf can name pyspark.daemon instead).
        "spark.python.daemon.module": "udfs.pydaemon",
    }
    # Delta's extension whenever its jars are there, whatever the engine: the embedded engine's SQL names are
    # then Delta catalog tables too (DESCRIBE HISTORY, VERSION AS OF, TIMESTAMP AS OF in SQL).
    if engine == "delta-spark" or delta_jars_present(conf):
        settings["spark.sql.extensions"] = DELTA_EXTENSION
        settings["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
        # Spark 4.1 substitutes named parameters in a pre-parser that extension parsers (Delta's, Iceberg's)
        # do not forward: `spark.sql(q, args=…)` fails with UNBOUND_SQL_PARAMETER. The legacy substitution
        # binds them during analysis instead; every saved query passes constants only.
        settings["spark.sql.legacy.parameterSubstitution.constantsOnly"] = "true"
        if conf.delta_packages:
            settings["spark.jars.packages"] = conf.delta_packages
        elif cached := delta_jars():
            # The jars `make install` cached (jobs/jars.py); spark.jars also ships them to executors.
            extra = conf.conf.get("spark.jars", "")
            settings["spark.jars"] = ",".join([*cached, *([extra] if extra else [])])
    # Under spark-submit the JVM already holds the command line's settings (--master, --conf): they win.
    launched = PySparkConf() if "PYSPARK_GATEWAY_PORT" in os.environ else None
    master = launched.get("spark.master", conf.master) if launched is not None else conf.master
    if launched is None:
        # Our quiet log4j2 profile instead of Spark's chatty default, for the driver JVM that pyspark is
        # about to launch in this process (any master: the driver runs here). Under spark-submit the JVM
        # already runs, and executors log into their worker's folders with the cluster's own settings.
        props = os.path.join(os.path.dirname(__file__), "log4j2.properties")
        settings["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile=file:{props}"
    if master.startswith("spark://"):
        settings.update(_standalone_settings(master))
    if master.startswith("local"):
        # A task result over maxDirectResultSize (1 MB by default) is parked in the block manager, and in
        # local mode the driver then fetches it from its own block manager over the network (Netty); any
        # failure of that fetch fails the task as TaskResultLost. A 16x bench run lost two 9 MB broadcast
        # results on that path on a 1 GB driver. In local mode driver and executor share the JVM, so results
        # up to the RPC limit (128 MB) are handed over directly instead; larger ones take the old path.
        settings["spark.task.maxDirectResultSize"] = "128m"
    # (spark.jars from the profile was already merged with the cached Delta jars above)
    settings.update({k: v for k, v in conf.conf.items() if not (k == "spark.jars" and k in settings)})
    if launched is None and "spark.pyspark.python" in settings:
        # Executors run the interpreter the driver's SparkContext names, which it reads from this variable.
        os.environ["PYSPARK_PYTHON"] = settings["spark.pyspark.python"]
    builder = SparkSession.builder
    for key, value in settings.items():
        if launched is None or not launched.contains(key):
            builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(conf.log_level)
    return spark
