"""One SparkSession for the whole suite, lakehouses under tmp_path, small builders."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark():
    from jobs.config import SparkConf
    from jobs.session import get_spark

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    conf = SparkConf(
        master="local[2]",
        shuffle_partitions=2,
        ui=False,
        progress=False,
        log_level="ERROR",
        # Delta rebuilds a snapshot's state in 50 partitions by default: tiny test tables need 2.
        conf={"spark.databricks.delta.snapshotPartitions": "2"},
    )
    session = get_spark(conf)
    yield session
    session.stop()


@pytest.fixture
def lakehouse(spark, tmp_path):
    from jobs.tables import EmbeddedLakehouse

    return EmbeddedLakehouse(spark, str(tmp_path / "wh"))


ENGINES = ("embedded", "delta-spark")


@pytest.fixture(params=ENGINES)
def engine_lakehouse(request, spark, tmp_path):
    """A lakehouse under tmp_path on each engine. Delta's jars come with ``make install``: no skip."""
    from jobs.session import delta_classes_loadable
    from jobs.tables import open_lakehouse

    if request.param == "delta-spark":
        assert delta_classes_loadable(spark), "Delta's jars are missing: run `make install` (.cache/jars)"
    return open_lakehouse(spark, str(tmp_path / "wh"), request.param)


def write_conf(
    path: Path, warehouse: Path, inputs: list[dict], sections: dict | None = None, **ingest
) -> Path:
    """A profile for tests: local[2] Spark, a temp warehouse, the given inputs, and any other ``sections``."""
    data = {
        "profile": "test",
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
        "storage": {"engine": "embedded", "warehouse": str(warehouse)},
        "ingest": {"inputs": inputs, **ingest},
        **(sections or {}),
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.fixture
def python() -> str:
    return sys.executable


# The generated sample corpus, ingested once for every test module that needs bronze data.
MAX_DOC_BYTES = 60_000


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    from jobs import sample_corpus

    out = tmp_path_factory.mktemp("sample")
    truth = sample_corpus.generate(out, n_docs=600, seed=7, max_doc_bytes=MAX_DOC_BYTES)
    return out, truth


@pytest.fixture(scope="session")
def ingested(spark, sample, tmp_path_factory):
    from jobs import ingest
    from jobs.runtime import EXIT_OK, run_job
    from jobs.tables import EmbeddedLakehouse

    out, truth = sample
    base = tmp_path_factory.mktemp("ingest")
    conf = write_conf(
        base / "c.yaml",
        base / "wh",
        [{"name": "sample", "path": str(out / "raw" / "*")}],
        max_doc_bytes=MAX_DOC_BYTES,
        split_bytes=64 * 1024,
    )
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id="ingest-1", verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    return EmbeddedLakehouse(spark, str(base / "wh")), truth, out, args


@pytest.fixture(scope="session")
def pipeline(spark, sample, tmp_path_factory):
    """Every stage run once over the sample corpus with tiny models, through ``corpuslake run``.

    Returns the profile path, the warehouse, the export folder and what the run printed.
    """
    import contextlib
    import io
    import types

    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import pipeline_lake

    from jobs import cli

    reuse = os.environ.get("CORPUSLAKE_TEST_PIPELINE")
    if reuse:  # local iteration only: a folder an earlier session's fixture left (see run.log there)
        base = Path(reuse)
        return types.SimpleNamespace(
            conf=base / "pipeline.yaml",
            warehouse=base / "wh",
            export=base / "export",
            stdout=(base / "run.log").read_text(),
            base=base,
        )
    out_dir, _ = sample
    base = tmp_path_factory.mktemp("pipeline")
    conf = pipeline_lake.write_profile(base, out_dir, MAX_DOC_BYTES)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["run", "--conf", str(conf)])
    assert code == 0, stdout.getvalue()
    (base / "run.log").write_text(stdout.getvalue())
    return types.SimpleNamespace(
        conf=conf, warehouse=base / "wh", export=base / "export", stdout=stdout.getvalue(), base=base
    )


@pytest.fixture(scope="session")
def cluster_pipeline(spark, pipeline, tmp_path_factory):
    """The ``pipeline`` profile on delta-spark on a standalone cluster, through a killed driver and two
    killed workers (tests/fixtures/cluster_run.py). The cluster is stopped before the tests look at the lake.

    It is the suite's one delta-spark pipeline run: tests/test_cluster.py checks the faults left nothing
    behind, tests/test_engines.py that its tables equal the local embedded run's.
    """
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import cluster_run

    base = tmp_path_factory.mktemp("cluster-run")
    with cluster_run.started(tmp_path_factory.mktemp("cluster")) as handle:
        return cluster_run.run_scenario(handle, pipeline, spark, base)
