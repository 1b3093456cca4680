"""The session factory: settings every job relies on, and reuse of the active session."""

from __future__ import annotations

import os
import sys

from jobs.config import SparkConf
from jobs.session import (
    _standalone_settings,
    delta_classes_loadable,
    delta_jars_present,
    get_spark,
    session_settings,
)


def test_session_settings(spark):
    conf = spark.conf
    assert conf.get("spark.sql.execution.arrow.pyspark.enabled") == "true"
    assert conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.shuffle.partitions") == "2"
    assert spark.sparkContext.master == "local[2]"


def test_local_task_results_are_handed_over_directly(spark):
    """A 3 MB task result in local mode goes straight to the driver, not through a fetch from the block
    manager (which a failed fetch turns into TaskResultLost): the task records no result fetch."""
    from jobs.runtime import stage_jobs

    sc = spark.sparkContext
    with stage_jobs(spark, "direct-results", "test"):
        sizes = [len(r) for r in sc.parallelize(range(2), 2).map(lambda i: b"x" * (3 << 20)).collect()]
    (job,) = sc.statusTracker().getJobIdsForGroup("direct-results")
    store = sc._jsc.sc().statusStore()
    fetched = []
    for stage in list(sc.statusTracker().getJobInfo(job).stageIds):
        tasks = store.taskList(stage, 0, 10)
        fetched += [tasks.apply(i).resultFetchStart().isDefined() for i in range(tasks.size())]
    assert sizes == [3 << 20] * 2 and fetched == [False, False]


def test_session_settings_for_a_block_then_as_they_were(spark):
    listing = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    assert spark.conf.get(key, None) is None
    spark.conf.set(listing, "77")
    try:
        with session_settings(spark, {listing: "3", key: "false"}):
            assert (spark.conf.get(listing), spark.conf.get(key)) == ("3", "false")
        assert (spark.conf.get(listing), spark.conf.get(key, None)) == ("77", None)
    finally:
        spark.conf.unset(listing)


def test_active_session_is_reused(spark):
    # Under spark-submit / Databricks / notebooks the job must not build a second session.
    assert get_spark(SparkConf(master="local[8]", shuffle_partitions=99)) is spark


def test_delta_detection(spark):
    assert delta_jars_present(SparkConf(conf={"spark.jars.packages": "io.delta:delta-spark_2.13:4.3.1"}))
    # make install cached Delta's jars: the suite's session loads them, and Delta's SQL with them.
    assert delta_jars_present(SparkConf())
    assert delta_classes_loadable(spark)
    jars = spark.conf.get("spark.jars")
    assert "delta-spark_2.13-4.3.1.jar" in jars and "delta-storage-4.3.1.jar" in jars
    assert spark.conf.get("spark.sql.legacy.parameterSubstitution.constantsOnly") == "true"
    assert spark.sql("select :x + 1 as y", args={"x": 1}).first()["y"] == 2


def test_jar_cache_keeps_only_what_spark_lacks(tmp_path):
    """The Maven output has Delta's jars and older copies of Spark's own; only Delta's are kept."""
    from jobs.jars import artifact, delta_jars, prune

    src, dest = tmp_path / "maven", tmp_path / "jars"
    src.mkdir()
    for name in ("delta-spark_2.13-4.3.1.jar", "delta-storage-4.3.1.jar", "jackson-core-2.13.5.jar"):
        (src / name).write_bytes(b"jar")
    dest.mkdir()
    (dest / "delta-spark_2.13-4.1.0.jar").write_bytes(b"stale")
    kept = ["delta-spark_2.13-4.3.1.jar", "delta-storage-4.3.1.jar"]
    assert prune(src, dest) == kept
    assert sorted(p.name for p in dest.glob("*.jar")) == kept
    assert artifact("delta-spark_2.13-4.3.1.jar") == "delta-spark_2.13"
    assert len(delta_jars(dest)) == 2 and delta_jars(src.parent / "nothing") == []


def test_jar_list_for_spark_submit(tmp_path, monkeypatch, capsys):
    from jobs import jars

    monkeypatch.setenv("CORPUSLAKE_JARS", str(tmp_path))
    assert jars.main(["list"]) == 1
    assert capsys.readouterr().err == f"error: no delta-spark jar in {tmp_path}; run `make install`\n"
    for name in ("delta-storage-4.3.1.jar", "delta-spark_2.13-4.3.1.jar"):
        (tmp_path / name).write_bytes(b"jar")
    assert jars.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert (
        listed
        == f"{tmp_path.resolve()}/delta-spark_2.13-4.3.1.jar,{tmp_path.resolve()}/delta-storage-4.3.1.jar\n"
    )


def test_standalone_master_settings():
    # Executors of a cluster on this machine run this interpreter; a loopback master keeps the driver there.
    local = _standalone_settings("spark://127.0.0.1:7077")
    assert local["spark.pyspark.python"] == (os.environ.get("PYSPARK_PYTHON") or sys.executable)
    assert local["spark.driver.host"] == local["spark.driver.bindAddress"] == "127.0.0.1"
    assert "spark.driver.host" not in _standalone_settings("spark://spark-master.example:7077")


def test_python_workers_import_pyspark_from_the_venv_not_sparks_archives(spark):
    """udfs.pydaemon: workers have none of Spark's archives on sys.path (pyspark and py4j come from the
    virtualenv), so pyspark's per-task ``importlib.invalidate_caches()`` re-reads no zip directory."""
    import pyspark

    from udfs.pydaemon import redundant_archives

    def probe(_):
        import importlib
        import sys

        import py4j
        import pyspark

        importlib.invalidate_caches()
        zips = [p for p in sys.path_importer_cache if str(p).endswith((".zip", ".jar"))]
        yield pyspark.__file__, py4j.__file__, [p for p in sys.path if p.endswith((".zip", ".jar"))], zips

    assert spark.conf.get("spark.python.daemon.module") == "udfs.pydaemon"
    ((ps, p4, archives, importers),) = spark.sparkContext.parallelize([0], 1).mapPartitions(probe).collect()
    assert ps == pyspark.__file__ and ".zip" not in p4
    assert [
        a for a in archives if "pyspark" in a or "py4j" in a or "spark-core" in a
    ] == [] and importers == []
    # Only Spark's three kinds of archive go, and only when the rest of the path has pyspark and py4j.
    lib = os.path.join(os.path.dirname(pyspark.__file__), "python", "lib")
    path = [
        f"{lib}/pyspark.zip",
        f"{lib}/py4j-0.10.9.9-src.zip",
        "/x/jars/spark-core_2.13-4.1.1.jar",
        "/u/mine.zip",
    ]
    site = os.path.dirname(os.path.dirname(pyspark.__file__))
    assert redundant_archives([*path, site]) == path[:3]
    assert redundant_archives(path) == []  # no installed pyspark: keep the zips
