"""The session factory: settings every job relies on, and reuse of the active session."""

from __future__ import annotations

import os
import sys

from jobs.config import SparkConf
from jobs.session import _standalone_settings, delta_classes_loadable, delta_jars_present, get_spark


def test_session_settings(spark):
    conf = spark.conf
    assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.master == "local[2]"


def test_active_session_is_reused(spark):
    # Under spark-submit / Databricks / notebooks the job must not build a second session.
    assert get_spark(SparkConf(master="local[8]", shuffle_partitions=99)) is spark


def test_delta_detection(spark):
    assert delta_jars_present(SparkConf(conf={"spark.jars.packages": "io.delta:delta-spark_2.13:4.1.0"}))
    if not delta_jars_present(
        SparkConf()
    ):  # no jars in this install: the session cannot load Delta's classes
        assert delta_classes_loadable(spark) is False


def test_standalone_master_settings():
    # Executors of a cluster on this machine run this interpreter; a loopback master keeps the driver there.
    local = _standalone_settings("spark://127.0.0.1:7077")
    assert local["spark.pyspark.python"] == (os.environ.get("PYSPARK_PYTHON") or sys.executable)
    assert local["spark.driver.host"] == local["spark.driver.bindAddress"] == "127.0.0.1"
    assert "spark.driver.host" not in _standalone_settings("spark://spark-master.example:7077")
