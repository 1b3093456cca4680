"""A write killed with SIGKILL at any point leaves the previous version intact and no orphan rows visible.

On both engines: the child process writes through the same engine as the test reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable

FIXTURE = Path(__file__).parent / "fixtures" / "killed_writer.py"
pytestmark = pytest.mark.slow


def _flat():
    sys.path.insert(0, str(FIXTURE.parent))
    from killed_writer import FLAT

    return FLAT


def _prepare(spark, engine_lakehouse):
    flat = _flat()
    engine_lakehouse.write(
        spark.createDataFrame([(1, "a"), (2, "b")], flat.schema), flat, "append", run_id="v1"
    )
    return flat


def _assert_intact(engine_lakehouse, flat):
    path = engine_lakehouse.path(flat)
    assert DeltaTable(path).version() == 1
    assert sorted(r["id"] for r in DeltaTable(path).to_pyarrow_table().to_pylist()) == [1, 2]
    assert sorted(tuple(r) for r in engine_lakehouse.read(flat).collect()) == [(1, "a"), (2, "b")]


def _spawn(warehouse: str, speed: str, env: dict, engine: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(FIXTURE), warehouse, speed, engine],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
        start_new_session=True,
    )


def test_sigkill_during_spark_write(spark, engine_lakehouse):
    flat = _prepare(spark, engine_lakehouse)
    proc = _spawn(engine_lakehouse.warehouse, "slow", {}, engine_lakehouse.engine)
    try:
        assert proc.stdout.readline().strip() == b"WRITING"
        root = Path(engine_lakehouse.path(flat))
        deadline = time.time() + 120
        # Wait until the child's staged folder exists: Spark is writing its files.
        while time.time() < deadline and not any(d.name.startswith("run-killed") for d in root.iterdir()):
            time.sleep(0.2)
        assert any(d.name.startswith("run-killed") for d in root.iterdir()), "child never started writing"
        time.sleep(1.0)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    _assert_intact(engine_lakehouse, flat)
    # The table still takes writes after the crash.
    engine_lakehouse.write(spark.createDataFrame([(3, "c")], flat.schema), flat, "append", run_id="v2")
    assert sorted(r["id"] for r in engine_lakehouse.read(flat).collect()) == [1, 2, 3]


def test_sigkill_between_staging_and_commit(spark, engine_lakehouse):
    flat = _prepare(spark, engine_lakehouse)
    proc = _spawn(
        engine_lakehouse.warehouse, "fast", {"CORPUSLAKE_FAULT": "before_commit"}, engine_lakehouse.engine
    )
    out, _ = proc.communicate(timeout=180)
    os.killpg(proc.pid, signal.SIGKILL) if proc.returncode is None else None
    assert out.decode().split() == ["WRITING"]  # never reached COMMITTED
    assert proc.returncode == -signal.SIGKILL
    # Its 40 rows are fully written on disk, yet no reader sees them.
    root = Path(engine_lakehouse.path(flat))
    orphans = [p for d in root.iterdir() if d.name.startswith("run-killed") for p in d.glob("*.parquet")]
    assert orphans, "expected the killed run's staged files on disk"
    _assert_intact(engine_lakehouse, flat)


# ------------------------------------------------------------------- ingest killed around its commits


def _two_files(raw: Path) -> None:
    """36 records: 30 distinct pages, 1 malformed line, 5 pages that b.jsonl repeats from a.jsonl."""
    raw.mkdir(parents=True)
    (raw / "a.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "text": f"page {i}"}) + "\n" for i in range(20)) + "{bad\n"
    )
    (raw / "b.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "text": f"page {i}"}) + "\n" for i in range(15, 30))
    )


def _killed_ingest(conf: Path, fault: str) -> str:
    """Run ``corpuslake stage ingest`` in a child that SIGKILLs itself at ``fault``; return its stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli", "stage", "ingest", "--conf", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "CORPUSLAKE_FAULT": fault},
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, out
    return out


def _state(lh) -> dict[str, tuple[int | None, int]]:
    from jobs.catalog import all_specs

    return {s.name: (lh.version(s), lh.read(s).count() if lh.exists(s) else 0) for s in all_specs()}


@pytest.mark.parametrize(
    "fault",
    ["after_commit:bronze.rejects:1", "after_commit:bronze.documents:1"],
    ids=["after-both-commits", "between-the-commits"],
)
def test_rerun_after_a_kill_around_the_commit_adds_nothing_twice(spark, tmp_path, capsys, fault):
    """A plain rerun (no --run-id) after a kill just after a bronze commit: files whose rows landed are not
    read again (the file ledger in the commits), a half-committed run is finished (its rejects), the killed
    run is marked abandoned, and nothing is ever added twice."""
    import argparse

    from jobs import ingest
    from jobs.queries import sql_text
    from jobs.runtime import EXIT_OK, run_job
    from jobs.tables import EmbeddedLakehouse
    from schemas import audit as audit_schemas
    from schemas import bronze
    from tests.conftest import write_conf

    _two_files(tmp_path / "raw")
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(tmp_path / "raw/*")}])
    out = _killed_ingest(conf, fault)
    # The run id is printed when the stage starts, so a killed run can still be named.
    (killed,) = re.findall(r"^ingest run (\S+) started$", out, re.M)
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    both = fault.startswith("after_commit:bronze.rejects")
    assert (lh.read(bronze.DOCUMENTS).count(), lh.read(bronze.REJECTS).count()) == (30, 6 if both else 0)
    assert lh.read(audit_schemas.RUNS).filter(f"run_id = '{killed}'").select("status").collect() == [
        ("running",)
    ]

    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    text = capsys.readouterr().out
    (rerun,) = re.findall(r"^ingest run (\S+) started$", text, re.M)
    assert f"  marked run {killed} abandoned: it never ended and its process (pid " in text
    reasons = Counter(r["reason"] for r in lh.read(bronze.REJECTS).collect())
    assert lh.read(bronze.DOCUMENTS).count() == 30
    assert reasons == Counter({"duplicate_doc_id": 5, "malformed_json": 1})
    if both:
        assert "files read: 0 (skipped 2 already ingested)" in text
        assert [lh.version(s) for s in bronze.TABLES] == [1, 1]
    else:  # the killed run's documents landed, its rejects did not: the rerun commits exactly those
        assert "files read: 2 (skipped 0 already ingested)" in text
        assert f"note: finished run {killed}: its documents of 2 files had landed before it ended" in text
        assert [lh.version(s) for s in bronze.TABLES] == [1, 1]
        assert {r["ingest_run_id"] for r in lh.read(bronze.REJECTS).collect()} == {rerun}

    # audit.runs: the killed run is abandoned, found by the rerun; the runs query shows it apart.
    lh.register_sql(audit_schemas.TABLES)
    runs = {r["run_id"]: r for r in spark.sql(sql_text("runs")).collect()}
    assert (runs[killed]["status"], runs[killed]["found_by"]) == ("abandoned", rerun)
    assert (runs[rerun]["status"], runs[rerun]["found_by"]) == ("succeeded", None)
    assert runs[killed]["ended_at"] >= runs[rerun]["started_at"]

    # A second plain rerun: every table keeps its rows, bar audit.runs' start and end rows of that run.
    before = _state(lh)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert "files read: 0 (skipped 2 already ingested)" in capsys.readouterr().out
    after = _state(lh)
    runs_v, runs_n = before.pop(audit_schemas.RUNS.name)
    assert after.pop(audit_schemas.RUNS.name) == (runs_v + 2, runs_n + 2)
    assert after == before


def test_plan_files_from_the_audit_and_the_ledger():
    from jobs.ingest import InputFile, plan_files

    def f(name: str) -> InputFile:
        return InputFile("t", f"/raw/{name}", "jsonl", 10, 1, ("text", None, None))

    files = [f(n) for n in ("ok", "both", "dead", "live", "mine", "new")]
    fp = {x.uri.rsplit("/", 1)[1]: x.fingerprint for x in files}
    docs, rejects = "bronze.documents", "bronze.rejects"
    ledger = {
        fp["both"]: {docs: "k1", rejects: "k1"},
        fp["dead"]: {docs: "k2"},  # k2 ended (killed and found, or failed) between its two commits
        fp["live"]: {docs: "k3"},  # k3 is still running: its rejects commit is on its way
        fp["mine"]: {docs: "me"},  # this run id's own earlier attempt
    }
    plan = plan_files(files, {fp["ok"]}, ledger, {"k1", "k2"}, "me")
    name = lambda x: x.uri.rsplit("/", 1)[1]  # noqa: E731
    assert [name(x) for x in plan.skipped] == ["ok", "both"]
    assert [(name(x), k) for x, k in plan.finish] == [("dead", "k2"), ("mine", "me")]
    assert [(name(x), k) for x, k in plan.in_flight] == [("live", "k3")]
    assert [name(x) for x in plan.read] == ["new"]
    assert [name(x) for x in plan.todo] == ["dead", "mine", "new"]


def test_abandoned_only_when_the_owner_is_gone():
    import socket
    from datetime import datetime, timedelta, timezone

    from jobs import audit

    now = datetime.now(timezone.utc)
    host = socket.gethostname()
    me = audit.this_process()
    assert audit.parse_owner(me.line()) == me
    assert audit.parse_owner(None) is None
    # On this host: a live process is never abandoned, however old; a gone one at once.
    assert audit.abandoned_because(me, now - timedelta(days=9), now, host) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    gone = audit.Owner(host, child.pid)
    assert audit.abandoned_because(gone, now, now, host) == f"its process (pid {child.pid} on {host}) is gone"
    # The same pid started at another time is another process (pids get reused).
    reused = audit.Owner(host, os.getpid(), (me.ticks or 0) + 1)
    assert audit.abandoned_because(reused, now, now, host) is not None
    # On another host (or none recorded): only once older than ABANDON_AFTER.
    other = audit.Owner("elsewhere", 1)
    young = now - audit.ABANDON_AFTER + timedelta(minutes=1)
    assert audit.abandoned_because(other, young, now, host) is None
    old = now - audit.ABANDON_AFTER - timedelta(hours=1)
    why = "it started 25 h ago on {} and never ended"
    assert audit.abandoned_because(other, old, now, host) == why.format("host elsewhere")
    assert audit.abandoned_because(None, old, now, host) == why.format("an unrecorded host")
