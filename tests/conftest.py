"""One SparkSession for the whole suite, lakehouses under tmp_path, small builders."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# The drivers the suite starts in subprocesses (killed writers, racing writers, CLI runs, spark-submit, the
# pipeline and cluster runs) run little work each: the JIT's optimizing tier (C2) and the parallel GC's
# threads cost them more CPU than they save (measured under load: the atomicity and concurrency tests ran
# about 35% faster with C1 alone and the serial GC). The session's own JVM lives for the whole suite and
# does most of its work: it keeps the JIT's defaults (C1 alone made tests/test_incremental.py's lake 15%
# slower there; on 2026-11-27, C1 with a 256 MB code cache and the parallel GC took
# tests/test_incremental.py and tests/test_aggregate_domains.py from 263 s to 333 s). The parallel GC for it
# cost 270 s of CPU against G1's 295 s on five in-process modules, but over the whole suite its GC threads
# took 316 s against G1's 241 s, and in-process tests ran up to 1.7x slower (2026-11-27): it keeps G1 too.
# The cluster's daemons keep the defaults (its executors get these options, tests/fixtures/cluster_run.py).
# With C1 alone the JVM's code cache shrinks to 48 MB by default, and a whole pipeline's generated classes
# (whole-stage code is on in the subprocesses) keep it nearly full: its sweeper thread then ran for 40 s of
# the pipeline driver's CPU and the compiler for 42 s. With 256 MB: no sweeping, compiler 21 s, the pipeline
# alone 370 s -> 341 s wall (2026-11-27). Test-only: users' jobs keep the JVM's defaults (which have a 240
# MB code cache). SPARK_SUBMIT_OPTS reaches every driver launched through spark-submit (pyspark's included).
TEST_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:ReservedCodeCacheSize=256m"
os.environ.setdefault("SPARK_SUBMIT_OPTS", TEST_JVM_OPTS)


# A JVM that cannot use the class archive (another JVM build, another class path) runs without it, silently:
# its warning would land on the stdout that tests read.
QUIET_CDS = "-Xlog:cds=off,cds+dynamic=off"


@pytest.fixture(scope="session", autouse=True)
def _jvm_archive() -> str:
    """The JVM options that map the suite's class archive (tests/fixtures/jvm_archive.py says why), built
    once per JVM, pyspark and jar set into ``.cache/jvm``; empty when the archive cannot be built or someone
    set their own ``SPARK_SUBMIT_OPTS``. Every JVM started later gets them: subprocess drivers through
    ``SPARK_SUBMIT_OPTS``, the session's JVM through the ``spark`` fixture."""
    if os.environ.get("SPARK_SUBMIT_OPTS") != TEST_JVM_OPTS:
        return ""
    archive = _archive_path()
    if not archive.exists():
        _build_archive(archive)
    if not archive.exists():
        return ""
    flags = f"-XX:SharedArchiveFile={archive} {QUIET_CDS}"
    os.environ["SPARK_SUBMIT_OPTS"] = f"{TEST_JVM_OPTS} {flags}"
    return flags


def _archive_path() -> Path:
    import hashlib
    import shutil

    import pyspark

    from jobs.jars import delta_jars

    java = Path(shutil.which("java") or "java").resolve()
    jars = sorted(p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")) + delta_jars()
    script = (ROOT / "tests" / "fixtures" / "jvm_archive.py").read_bytes()
    key = hashlib.sha256(repr((str(java), pyspark.__version__, jars, TEST_JVM_OPTS, script)).encode())
    return ROOT / ".cache" / "jvm" / f"spark-{key.hexdigest()[:16]}.jsa"


def _build_archive(archive: Path) -> None:
    import subprocess
    import tempfile
    import warnings

    archive.parent.mkdir(parents=True, exist_ok=True)
    for old in archive.parent.glob("spark-*.jsa*"):  # another JVM, pyspark or jar set's archive
        old.unlink()
    partial = archive.with_name(f"{archive.name}.{os.getpid()}")
    opts = f"{TEST_JVM_OPTS} -XX:ArchiveClassesAtExit={partial} {QUIET_CDS}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            proc = subprocess.run(
                [sys.executable, str(ROOT / "tests" / "fixtures" / "jvm_archive.py"), str(Path(tmp) / "wh")],
                cwd=ROOT,
                env={**os.environ, "SPARK_SUBMIT_OPTS": opts, "GX_ANALYTICS_ENABLED": "false"},
                capture_output=True,
                text=True,
                timeout=600,
            )
            error = "" if proc.returncode == 0 else proc.stderr[-500:]
        except subprocess.TimeoutExpired:
            error = "its driver ran for more than 600 s"
    if not error and partial.exists():
        partial.replace(archive)  # whole, or not there: the writer JVM has exited
    else:
        partial.unlink(missing_ok=True)
        warnings.warn(f"no JVM class archive (the suite runs without it): {error}", stacklevel=1)


@pytest.fixture(scope="session")
def spark(_jvm_archive):
    from jobs.config import SparkConf
    from jobs.session import get_spark

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    conf = SparkConf(
        master="local[2]",
        shuffle_partitions=2,
        ui=False,
        progress=False,
        log_level="ERROR",
        conf={
            # Delta rebuilds a snapshot's state in 50 partitions by default: tiny test tables need 2.
            "spark.databricks.delta.snapshotPartitions": "2",
            # The in-process tests run thousands of small, mostly distinct queries: compiling each plan's
            # whole-stage code and re-planning at every shuffle (AQE) cost more than they save on a few
            # hundred rows (measured on tests/test_aggregate_domains.py: JVM CPU 114 s against 130-138 s).
            # Test-only: the whole-pipeline and cluster runs, which are subprocesses, keep Spark's defaults.
            "spark.sql.codegen.wholeStage": "false",
            "spark.sql.adaptive.enabled": "false",
            # Without whole-stage code, Spark still compiles each distinct projection, predicate and ordering
            # with Janino and the JIT then compiles the classes: a quarter of this JVM's samples in a profile
            # of tests/test_aggregate_docs.py. Interpreted expressions (an internal, test-only setting)
            # cut its JVM CPU 17% and tests/test_incremental.py's wall time 19%.
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            # This one JVM runs the whole suite (45 minutes on a slow day); with the default 1g heap, the
            # last whole-pipeline rerun once failed to broadcast a join ("Not enough memory to build and
            # broadcast the table") after minutes of GC. The machines have 24 GiB.
            "spark.driver.memory": "3g",
        },
    )
    # This session's JVM keeps the JVM's defaults (see TEST_JVM_OPTS) but maps the class archive; subprocesses
    # started later still inherit the short-lived settings.
    saved = os.environ.get("SPARK_SUBMIT_OPTS")
    os.environ["SPARK_SUBMIT_OPTS"] = _jvm_archive
    try:
        session = get_spark(conf)
    finally:
        os.environ.pop("SPARK_SUBMIT_OPTS")
        if saved is not None:
            os.environ["SPARK_SUBMIT_OPTS"] = saved
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


def silver_row(doc_id: str, text: str, **fields) -> dict:
    """A silver.documents row for ``text`` (bytes and the ~4-bytes-per-token estimate computed), English web
    page by default; ``fields`` override any column (url, domain, source, ...)."""
    import math
    from datetime import datetime, timezone

    nb = len(text.encode("utf-8"))
    row = {
        "doc_id": doc_id,
        "url": None,
        "domain": None,
        "source": "web",
        "lang": "en",
        "lang_score": 1.0,
        "text": text,
        "n_bytes": nb,
        "n_bytes_raw": nb,
        "n_tokens_est": math.ceil(nb / 4),
        "text_hash": f"h-{doc_id}",
        "contamination": None,
        "clean_run_id": "clean-0",
        "cleaned_at": datetime(2026, 1, 1, tzinfo=timezone.utc),
    }
    return {**row, **fields}


@pytest.fixture
def python() -> str:
    return sys.executable


def run_killed(python: str, argv: list[str], fault: str, timeout: int = 600):
    """``python -m argv…`` with ``CORPUSLAKE_FAULT=fault`` (``jobs.faults``): the finished process, which the
    fault SIGKILLed (returncode -9) if it got there."""
    import subprocess

    env = {**os.environ, "CORPUSLAKE_FAULT": fault}
    return subprocess.run([python, "-m", *argv], env=env, capture_output=True, text=True, timeout=timeout)


# The generated sample corpus, ingested once for every test module that needs bronze data.
MAX_DOC_BYTES = 60_000


@pytest.fixture(scope="session")
def sample(tmp_path_factory):
    from jobs.demo import sample_corpus

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


# The pipeline fixture's shuffle partitions: enough that a step keyed by a handful of values (a window by
# strategy) leaves tasks empty, which the funnel check (tests/test_funnel.py) reads in the run's event log.
PIPELINE_PARTITIONS = 8

# The two whole-pipeline runs (``pipeline``, then ``cluster_pipeline``) are subprocesses that mostly wait on
# Spark: they start with the session in one background thread, and the tests that need neither run
# meanwhile. Collection puts the modules that use them last (pipeline, then cluster).
_WANTED = pytest.StashKey[set]()
_FUTURES = pytest.StashKey[dict]()


def _uses(item, name: str) -> bool:
    return name in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: only the tests that will run count
def pytest_collection_modifyitems(config, items):
    rank: dict[str, int] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        r = 2 if _uses(item, "cluster_pipeline") else 1 if _uses(item, "pipeline") else 0
        rank[module] = max(rank.get(module, 0), r)
    items.sort(key=lambda item: rank[item.nodeid.split("::")[0]])  # stable: module order kept within a rank
    config.stash[_WANTED] = {
        name for name, r in (("pipeline", 1), ("cluster", 2)) if r <= max(rank.values(), default=0)
    }


@pytest.fixture(scope="session", autouse=True)
def _pipeline_runs(request, tmp_path_factory):
    """Starts the whole-pipeline runs the collected tests need, in a background thread (see above)."""
    from concurrent.futures import ThreadPoolExecutor

    wanted = request.config.stash.get(_WANTED, set())
    futures: dict = {}
    request.config.stash[_FUTURES] = futures
    if not wanted or os.environ.get("CORPUSLAKE_TEST_PIPELINE"):
        yield
        return
    # The session first: building it swaps SPARK_SUBMIT_OPTS for its own JVM's options, and a pipeline
    # driver launched meanwhile got the JVM's defaults (its JIT threads then took 187 s of CPU).
    request.getfixturevalue("spark")
    sample = request.getfixturevalue("sample")
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline-runs")
    futures["pipeline"] = pool.submit(_run_pipeline, sample[0], tmp_path_factory)
    if "cluster" in wanted:
        futures["cluster"] = pool.submit(lambda: _run_cluster(futures["pipeline"].result(), tmp_path_factory))
    yield
    pool.shutdown(wait=True)  # a cluster run always stops its cluster: wait for it


def _run_pipeline(sample_dir: Path, tmp_path_factory):
    import subprocess
    import types

    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import pipeline_lake

    base = tmp_path_factory.mktemp("pipeline")
    conf = pipeline_lake.write_profile(base, sample_dir, MAX_DOC_BYTES)
    events = base / "events"
    cmd = [sys.executable, "-m", "jobs.cli", "run", "--conf", str(conf), "--events", str(events)]
    cmd += ["--set", f"spark.shuffle_partitions={PIPELINE_PARTITIONS}"]
    env = {k: v for k, v in os.environ.items() if k != "PYSPARK_GATEWAY_PORT"}
    proc = subprocess.run(
        cmd, cwd=ROOT, env={**env, "GX_ANALYTICS_ENABLED": "false"}, capture_output=True, text=True
    )
    (base / "run.log").write_text(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return types.SimpleNamespace(
        conf=conf, warehouse=base / "wh", export=base / "export", stdout=proc.stdout, base=base, events=events
    )


def _run_cluster(pipeline, tmp_path_factory):
    sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
    import cluster_run

    base = tmp_path_factory.mktemp("cluster-run")
    with cluster_run.started(tmp_path_factory.mktemp("cluster")) as handle:
        return cluster_run.run_scenario(handle, pipeline, base)


@pytest.fixture(scope="session")
def pipeline(request, sample, tmp_path_factory):
    """Every stage run once over the sample corpus with tiny models: ``corpuslake run --events`` in a new
    process, with 8 shuffle partitions and Spark's event log (under ``base/events``).

    Returns the profile path, the warehouse, the export folder, the event log folder and what the run printed.
    """
    import types

    reuse = os.environ.get("CORPUSLAKE_TEST_PIPELINE")
    if reuse:  # local iteration only: a folder an earlier session's fixture left (see run.log there)
        base = Path(reuse)
        return types.SimpleNamespace(
            conf=base / "pipeline.yaml",
            warehouse=base / "wh",
            export=base / "export",
            stdout=(base / "run.log").read_text(),
            base=base,
            events=base / "events",
        )
    future = request.config.stash[_FUTURES].get("pipeline")
    return future.result() if future else _run_pipeline(sample[0], tmp_path_factory)


@pytest.fixture(scope="session")
def cluster_pipeline(request, pipeline, tmp_path_factory):
    """The ``pipeline`` profile on delta-spark on a standalone cluster, through a killed driver and two
    killed workers (tests/fixtures/cluster_run.py). The cluster is stopped before the tests look at the lake.

    It is the suite's one delta-spark pipeline run: tests/test_cluster.py checks the faults left nothing
    behind, tests/test_engines.py that its tables equal the local embedded run's.
    """
    future = request.config.stash[_FUTURES].get("cluster")
    return future.result() if future else _run_cluster(pipeline, tmp_path_factory)
