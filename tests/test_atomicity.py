"""A write killed with SIGKILL at any point leaves the previous version intact and no orphan rows visible.

On both engines: the child process writes through the same engine as the test reads.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
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
