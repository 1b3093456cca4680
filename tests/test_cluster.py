"""The pipeline on a real Spark standalone cluster (``jobs.cluster``), through killed workers and driver.

A master and two workers of one core each run from pyspark's own distribution on 127.0.0.1; the module's
fixture always stops them, and SIGKILLs whatever they or the test's drivers left running. The test's own
SparkSession stays local: every cluster run is a subprocess.

1. ``spark-submit --master spark://… jobs/cli.py run``: the driver (spark-submit's JVM and its Python) is
   SIGKILLed after ingest and load_refs committed, while clean is staging its first table.
2. ``corpuslake run --master spark://…`` reruns the same profile. Mid-clean, a worker whose executor runs a
   task is SIGKILLed with its executor and Python workers; a replacement worker joins; mid-scoring, another
   busy worker is SIGKILLed the same way. The run finishes on the surviving worker.
3. The lake equals the local-mode ``pipeline`` fixture's: silver doc_ids, score keys (scores within float
   tolerance: batch composition changes the last bits), selections and export shards; no key twice; every
   file in a Delta log sits in a ``run-*`` staging folder, none under ``_temporary``, and the live files come
   from succeeded runs only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DoubleType, FloatType

from jobs import cluster as cl
from jobs.catalog import all_specs
from jobs.tables import EmbeddedLakehouse, safe_name
from schemas import audit, gold, scores, silver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCORE_STAGES = ("score_prrc", "score_perplexity", "score_similarity")
KEYS = {
    scores.QUALITY.name: ["doc_id"],
    scores.PRRC.name: scores.PRRC_KEYS,
    scores.PERPLEXITY.name: scores.PERPLEXITY_KEYS,
    scores.EMBEDDINGS.name: scores.EMBEDDING_KEYS,
    scores.SIMILARITY.name: scores.SIMILARITY_KEYS,
}
# The progress line of a running stage: "[clean 0:12] Spark stage 31: 5/8 tasks".
TICK = re.compile(r"^\[(\w+) \d+:\d\d(?::\d\d)?\]")
# The first line of a stage's summary, printed once it finished: "clean run clean-2026…".
SUMMARY = re.compile(r"^(\w+) run \S+")
RUN_DIR = re.compile(r"^run-(?P<run>.+)-[0-9a-f]{8}$")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two 1-core workers on free ports; stopped (and leftovers SIGKILLed) whatever happens."""
    folder = tmp_path_factory.mktemp("cluster")
    pids: set[int] = set()  # every process of ours seen: workers, executors, drivers and their children

    def track(pid: int | None) -> None:
        if pid:
            pids.update([pid, *cl.descendants(pid)])

    handle = types.SimpleNamespace(folder=folder, pids=pids, track=track, cluster=None)
    try:
        handle.cluster = cl.start(
            folder, workers=2, cores=1, memory="2g", port=cl.free_port(), webui_port=0, timeout=300
        )
        yield handle
    finally:
        c = cl.Cluster.load(folder)
        for name in c.worker_names():
            track(c.pid(name))
        cl.stop(folder)
        # Only processes this module started (by pid), and only while they still run Java or Python.
        left = [p for p in pids if cl.alive(p) and ("java" in cl._cmdline(p) or "python" in cl._cmdline(p))]
        cl.kill(left)


class Driver:
    """A pipeline run in a subprocess; its output (stdout and stderr) is read line by line as it comes."""

    def __init__(self, cmd: list[str], log: Path, track):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "SPARK_LOCAL_IP": cl.HOST}
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # an activated venv
        env.pop("PYSPARK_GATEWAY_PORT", None)
        self.log = log
        self.lines: list[str] = []
        self.stage: str | None = None  # the stage whose progress line came last, until its summary
        self.track = track
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT, bufsize=1
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        with open(self.log, "w", encoding="utf-8") as out:
            for line in self.proc.stdout:  # universal newlines: the progress lines' \r ends a line too
                text = line.strip()
                out.write(line)
                out.flush()
                self.lines.append(text)
                m = TICK.match(text)
                if m:
                    self.stage = m.group(1)
                elif SUMMARY.match(text) and SUMMARY.match(text).group(1) == self.stage:
                    self.stage = None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.lines[-n:])

    def check_running(self, what: str) -> None:
        if self.proc.poll() is not None:
            self._reader.join(5)
            code = self.proc.returncode
            pytest.fail(f"the run ended (exit {code}) before {what}; {self.log}:\n{self.tail()}")

    def kill(self) -> list[int]:
        """SIGKILL the driver process and everything below it (its JVM or its Python)."""
        tree = [self.proc.pid, *cl.descendants(self.proc.pid)]
        self.track(self.proc.pid)
        cl.kill(tree)
        self.proc.wait(30)
        _wait_gone(tree)
        self._reader.join(10)
        return tree

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the run did not finish in {timeout:g} s; {self.log}:\n{self.tail()}")
        self._reader.join(10)
        return code

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.kill()


def _wait_gone(pids: list[int], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while any(cl.alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running after SIGKILL: {[p for p in pids if cl.alive(p)]}"
        time.sleep(0.1)


def _rest(ui_port: int, path: str = ""):
    """The running app's ``/api/v1/applications/<app><path>`` from the driver's REST API."""
    base = f"http://{cl.HOST}:{ui_port}/api/v1/applications"
    with urllib.request.urlopen(base, timeout=5) as resp:
        app = json.load(resp)[0]["id"]
    with urllib.request.urlopen(f"{base}/{app}{path}", timeout=30) as resp:
        return json.load(resp)


def _busy_executors(ui_port: int) -> dict[str, int]:
    """Executor id → tasks running now ({} while the driver does not answer)."""
    try:
        execs = _rest(ui_port, "/executors")
    except (OSError, ValueError, IndexError, KeyError):
        return {}
    return {e["id"]: e["activeTasks"] for e in execs if e["id"] != "driver"}


def _lost_tasks(ui_port: int, ids, timeout: float = 30.0) -> list[str]:
    """Task attempts the driver recorded as failed on the executors ``ids``: those that died with them."""
    deadline = time.monotonic() + timeout
    while True:
        lost = []
        try:
            for s in _rest(ui_port, "/stages"):
                if s.get("numFailedTasks"):
                    path = f"/stages/{s['stageId']}/{s['attemptId']}/taskList?length=100000"
                    lost += [
                        f"stage {s['stageId']}.{s['attemptId']}: {t.get('errorMessage', '')[:120]}"
                        for t in _rest(ui_port, path)
                        if t["status"] == "FAILED" and t["executorId"] in ids
                    ]
        except (OSError, ValueError, IndexError, KeyError):
            pass
        if lost or time.monotonic() > deadline:
            return lost
        time.sleep(1)


def _kill_worker(handle, name: str) -> dict:
    """SIGKILL a worker, its executors and their Python workers; what was killed."""
    c = handle.cluster
    pid = c.pid(name)
    execs = {cl.executor_id(p): p for p in cl.executor_pids(pid)}
    tree = [pid, *cl.descendants(pid)]
    handle.pids.update(tree)
    cl.kill(tree)  # the worker first: it must not launch a new executor for the one that dies
    _wait_gone(tree)
    return {"worker": name, "pid": pid, "executors": execs, "processes": len(tree)}


def _kill_busy_worker(handle, run: Driver, stages, workers: list[str], ui_port: int, timeout: float) -> dict:
    """Once ``run`` is in one of ``stages`` and an executor of one of ``workers`` runs a task, kill it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.check_running(f"a worker was busy in {'/'.join(stages)}")
        stage = run.stage
        if stage in stages:
            busy = _busy_executors(ui_port)
            for name in workers:
                pid = handle.cluster.pid(name)
                ids = [cl.executor_id(p) for p in cl.executor_pids(pid)]
                if any(busy.get(i, 0) > 0 for i in ids):
                    handle.track(pid)
                    killed = _kill_worker(handle, name)
                    lost = _lost_tasks(ui_port, list(killed["executors"]))
                    return {**killed, "stage": stage, "busy": busy, "lost_tasks": len(lost), "lost": lost[:3]}
        time.sleep(0.05)
    pytest.fail(f"no worker of {workers} ran a task during {stages} within {timeout:g} s:\n{run.tail()}")


def _profile(pipeline, base: Path, ui_port: int) -> Path:
    """The pipeline fixture's profile on a new warehouse and export folder (its models), watched."""
    data = yaml.safe_load(Path(pipeline.conf).read_text(encoding="utf-8"))
    data["storage"]["warehouse"] = str(base / "wh")
    data["export"]["path"] = str(base / "export")
    data["progress"] = {"enabled": True, "interval_s": 0.5}
    # WARN: the driver's log names the executors lost. The UI's REST API shows busy executors and lost tasks.
    data["spark"].update(log_level="WARN", ui=True, conf={"spark.ui.port": str(ui_port)})
    path = base / "cluster.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _log_adds(table_root: str) -> list[str]:
    """Every file path any commit of the table's Delta log added (decoded, relative to the table)."""
    paths = []
    for commit in sorted(Path(table_root, "_delta_log").glob("*.json")):
        for line in commit.read_text(encoding="utf-8").splitlines():
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                paths.append(urllib.parse.unquote(action["add"]["path"]))
    return paths


def _assert_no_orphans(lh: EmbeddedLakehouse) -> dict[str, int]:
    """Committed files live in staging folders of succeeded runs; returns live files per table."""
    runs = lh.read(audit.RUNS)
    ok = {safe_name(r["run_id"]) for r in runs.filter("status = 'succeeded'").select("run_id").collect()}
    live_counts = {}
    for spec in all_specs():
        if spec.layer == "audit" or not lh.exists(spec):
            continue
        root = lh.path(spec)
        for path in _log_adds(root):
            segs = path.split("/")
            assert not any(s[:1] in ("_", ".") for s in segs), f"{spec.name}: {path} committed"
            assert RUN_DIR.match(segs[0]), f"{spec.name}: {path} is not in a run-* staging folder"
        live = lh.snapshot_files(spec)
        for f in live:
            rel = urllib.parse.unquote(f["path"])
            run = RUN_DIR.match(rel.split("/")[0]).group("run")
            assert run in ok, f"{spec.name}: live file {rel} comes from run {run}, which did not succeed"
            assert os.path.isfile(f["uri"]), f"{spec.name}: live file {rel} is missing on disk"
        live_counts[spec.name] = len(live)
    return live_counts


def _assert_same_scores(spec, keys: list[str], local, ours) -> int:
    """Same rows by key; floats within 1e-6 (relative), every other column equal. Returns the row count."""
    n = ours.count()
    assert n == local.count(), f"{spec.name}: {n} rows on the cluster, {local.count()} in local mode"
    assert ours.select(*keys).distinct().count() == n, f"{spec.name}: a key was written twice"
    assert ours.select(*keys).exceptAll(local.select(*keys)).count() == 0, f"{spec.name}: keys differ"
    checks = []
    for f in spec.schema.fields:
        if f.name in keys or f.name.endswith("run_id") or f.name.endswith("_at"):
            continue
        a, b = F.col(f"o.{f.name}"), F.col(f"l.{f.name}")
        if isinstance(f.dataType, (DoubleType, FloatType)):
            checks.append(F.abs(a - b) > 1e-6 * (1 + F.abs(b)))
        elif isinstance(f.dataType, ArrayType) and isinstance(f.dataType.elementType, FloatType):
            diff = F.aggregate(F.zip_with(a, b, lambda x, y: F.abs(x - y)), F.lit(0.0), lambda s, x: s + x)
            checks.append((F.size(a) != F.size(b)) | (diff > 1e-4))
        else:
            checks.append(~a.eqNullSafe(b))
    joined = ours.alias("o").join(local.alias("l"), [F.col(f"o.{k}") == F.col(f"l.{k}") for k in keys])
    bad = joined.filter(functools.reduce(lambda x, y: x | y, [F.coalesce(c, F.lit(True)) for c in checks]))
    assert bad.count() == 0, f"{spec.name}: rows differ from local mode: {bad.limit(2).collect()}"
    return n


def test_cluster_survives_killed_workers_and_driver(cluster, pipeline, spark, tmp_path):
    t0 = time.monotonic()
    c = cluster.cluster
    ui_port = cl.free_port()
    conf = _profile(pipeline, tmp_path, ui_port)
    wh = tmp_path / "wh"
    facts: dict = {}

    # 1. spark-submit; SIGKILL the driver once clean stages its first table (ingest, load_refs committed).
    submit = [str(Path(sys.executable).parent / "spark-submit"), "--master", c.master_url]
    submit += [str(ROOT / "jobs" / "cli.py"), "run", "--conf", str(conf)]
    staging = wh / "silver" / "documents"
    with Driver(submit, tmp_path / "submit.log", cluster.track) as run:
        deadline = time.monotonic() + 900
        while not (run.stage == "clean" and any(staging.glob("run-*"))):
            run.check_running("clean staged silver.documents")
            assert time.monotonic() < deadline, f"clean did not stage in time:\n{run.tail()}"
            cluster.track(run.proc.pid)
            time.sleep(0.05)
        facts["driver_killed"] = len(run.kill())
    lh = EmbeddedLakehouse(spark, str(wh))
    statuses = {r["stage"]: r["status"] for r in lh.read(audit.RUNS).collect() if r["status"] != "running"}
    assert statuses.get("ingest") == statuses.get("load_refs") == "succeeded", statuses
    assert "clean" not in statuses, f"clean finished before the driver was killed: {statuses}"
    facts["phase1_s"] = round(time.monotonic() - t0)
    # The dead app's executors go with it (the workers end them): none may hang on into the rerun.
    deadline = time.monotonic() + 120
    while any(cl.executor_pids(c.pid(n)) for n in c.worker_names()):
        assert time.monotonic() < deadline, "the killed driver's executors still run"
        time.sleep(0.2)

    # 2. The rerun on the cluster, a worker killed mid-clean and another mid-scoring.
    cmd = [sys.executable, "-m", "jobs.cli", "run", "--conf", str(conf), "--master", c.master_url]
    with Driver(cmd, tmp_path / "run.log", cluster.track) as run:
        first = _kill_busy_worker(cluster, run, ("clean",), ["worker-1", "worker-2"], ui_port, 900)
        survivor = "worker-2" if first["worker"] == "worker-1" else "worker-1"
        cl.start_worker(c, 3, cores=1, memory="2g")
        cl.wait_for_workers(c, 2, timeout=300, watch=["master", survivor, "worker-3"])
        deadline = time.monotonic() + 300
        while not cl.executor_pids(c.pid("worker-3")):  # the running app takes the new worker's core
            run.check_running("the replacement worker got an executor")
            assert time.monotonic() < deadline, "the running app got no executor on the replacement worker"
            time.sleep(0.2)
        second = _kill_busy_worker(cluster, run, SCORE_STAGES, ["worker-3", survivor], ui_port, 900)
        code = run.wait(1800)
        assert code == 0, f"the rerun failed (exit {code}); {run.log}:\n{run.tail(60)}"
        out = "\n".join(run.lines)
    for kill in (first, second):
        for eid in kill["executors"]:
            assert re.search(rf"Lost executor {eid}\b", out), f"the driver never lost executor {eid}: {kill}"
    # Each kill came while the REST API showed a task on that executor; at least one died mid-task.
    assert first["lost_tasks"] + second["lost_tasks"] >= 1, f"no task died: {first} {second}"
    assert re.search(r"^export\s+ok", out, re.M), out[-3000:]

    # 3. Identical to local mode, nothing twice, nothing from dead tasks or the dead driver committed.
    local = EmbeddedLakehouse(spark, str(pipeline.warehouse))
    lh = EmbeddedLakehouse(spark, str(wh))
    docs, local_docs = lh.read(silver.DOCUMENTS), local.read(silver.DOCUMENTS)
    n_docs = docs.count()
    assert docs.select("doc_id").distinct().count() == n_docs, "silver.documents has a doc_id twice"
    assert sorted(r[0] for r in docs.select("doc_id").collect()) == sorted(
        r[0] for r in local_docs.select("doc_id").collect()
    )
    assert lh.read(silver.FILTERED).count() == local.read(silver.FILTERED).count()
    rows = {
        spec.name: _assert_same_scores(spec, KEYS[spec.name], local.read(spec), lh.read(spec))
        for spec in scores.TABLES
    }
    sel = lh.read(gold.SELECTION).select("strategy", "doc_id", "rank")
    local_sel = local.read(gold.SELECTION).select("strategy", "doc_id", "rank")
    n_sel = sel.count()
    assert n_sel == local_sel.count() and sel.select("strategy", "doc_id").distinct().count() == n_sel
    assert sorted(map(tuple, sel.collect())) == sorted(map(tuple, local_sel.collect()))
    shards = 0
    for manifest in sorted(Path(pipeline.export).glob("*/manifest.json")):
        want = json.loads(manifest.read_text())
        got = json.loads((tmp_path / "export" / manifest.parent.name / "manifest.json").read_text())
        for key in ("documents", "tokens", "shards", "composition"):
            assert got[key] == want[key], f"export {manifest.parent.name}: {key} differs"
        shards += len(got["shards"])
    live = _assert_no_orphans(lh)
    on_disk = sum(len(lh._list_parquet(lh.path(s))) for s in all_specs() if s.layer != "audit")
    facts.update(
        silver_docs=n_docs,
        score_rows=rows,
        selection=n_sel,
        export_shards=shards,
        kills=[
            {k: kill[k] for k in ("worker", "stage", "executors", "processes", "busy", "lost_tasks", "lost")}
            for kill in (first, second)
        ],
        live_files=sum(live.values()),
        parquet_files_on_disk=on_disk,
        seconds=round(time.monotonic() - t0),
    )
    print(f"\ncluster fault test: {json.dumps(facts)}")


def test_cluster_stop_is_idempotent(tmp_path):
    # Nothing started there: stop and status say so and touch nothing; twice is the same.
    assert cl.stop(tmp_path) == []
    assert cl.stop(tmp_path) == []
    assert "no cluster" in cl.status(tmp_path)


def test_executor_pids_reads_proc():
    # A child that is not an executor is not listed; the helper reads /proc without failing.
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in cl.children(os.getpid())
        assert cl.executor_pids(os.getpid()) == []
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
