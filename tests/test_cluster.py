"""The pipeline on a real Spark standalone cluster, through a killed driver and two killed workers.

The ``cluster_pipeline`` fixture (tests/conftest.py, tests/fixtures/cluster_run.py) starts a master and two
1-core workers from pyspark's own distribution, runs the small pipeline's profile on delta-spark with
spark-submit and SIGKILLs the driver mid-clean, reruns it with ``corpuslake run --master`` while SIGKILLing a
busy worker mid-clean and another mid-scoring, and always stops the cluster. Here: the kills hit running
tasks, the rerun finished, nothing from the dead tasks or the dead driver is committed, and the export equals
local mode's. tests/test_engines.py compares every table with the local embedded run.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from pathlib import Path

import pytest

from jobs.catalog import all_specs
from jobs.tables import DeltaSparkLakehouse, safe_name
from schemas import audit

pytestmark = pytest.mark.slow

RUN_DIR = re.compile(r"^run-(?P<run>.+)-[0-9a-f]{8}$")


def _log_adds(table_root: str) -> dict[str, str]:
    """Every file path any commit of the table's Delta log added (decoded, relative) → the commit's run id."""
    added = {}
    for commit in sorted(Path(table_root, "_delta_log").glob("*.json")):
        lines = commit.read_text(encoding="utf-8").splitlines()
        actions = [json.loads(line) for line in lines if line.strip()]
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        for action in actions:
            if "add" in action:
                added[urllib.parse.unquote(action["add"]["path"])] = info.get("userMetadata")
    return added


def _assert_no_orphans(lh) -> dict[str, int]:
    """Committed files come from commits of succeeded runs, never from a task's temporary folder; staged
    files sit in their own run's folder. Returns live files per table."""
    runs = lh.read(audit.RUNS)
    ok = {r["run_id"] for r in runs.filter("status = 'succeeded'").select("run_id").collect()}
    live_counts = {}
    for spec in all_specs():
        if spec.layer == "audit" or not lh.exists(spec):
            continue
        added = _log_adds(lh.path(spec))
        for path, run in added.items():
            segs = path.split("/")
            assert not any(s[:1] in ("_", ".") for s in segs), f"{spec.name}: {path} committed"
            assert run in ok, f"{spec.name}: {path} was committed by run {run}, which did not succeed"
            staged = RUN_DIR.match(segs[0])
            # Staged writes commit their run's folder; MERGE writes its own files at the table's root.
            assert staged is None or staged.group("run") == safe_name(run), f"{spec.name}: {path} by {run}"
        live = lh.snapshot_files(spec)
        for f in live:
            assert urllib.parse.unquote(f["path"]) in added, f"{spec.name}: live {f['path']} never added"
            assert os.path.isfile(f["uri"]), f"{spec.name}: live file {f['path']} is missing on disk"
        live_counts[spec.name] = len(live)
    return live_counts


def test_cluster_survives_killed_workers_and_driver(cluster_pipeline, pipeline, spark):
    run = cluster_pipeline
    out = run.stdout
    for kill in run.kills:
        for eid in kill["executors"]:
            assert re.search(rf"Lost executor {eid}\b", out), f"the driver never lost executor {eid}: {kill}"
    # Each kill came while the REST API showed a task on that executor; at least one died mid-task.
    assert sum(k["lost_tasks"] for k in run.kills) >= 1, f"no task died: {run.kills}"
    assert "\nDelta engine: delta-spark\nstage " in out
    assert re.search(r"^export\s+ok", out, re.M), out[-3000:]

    lh = DeltaSparkLakehouse(spark, str(run.warehouse))
    shards = 0
    for manifest in sorted(Path(pipeline.export).glob("*/manifest.json")):
        want = json.loads(manifest.read_text())
        got = json.loads((run.export / manifest.parent.name / "manifest.json").read_text())
        for key in ("documents", "tokens", "shards", "composition"):
            assert got[key] == want[key], f"export {manifest.parent.name}: {key} differs"
        shards += len(got["shards"])
    assert shards > 0
    live = _assert_no_orphans(lh)
    # Keyed score chunks were committed with MERGE, every other write as one gated commit.
    prrc = next(s for s in all_specs() if s.name == "scores.prrc")
    assert "MERGE" in {h["operation"] for h in lh.history(prrc)}
    on_disk = sum(len(lh._list_parquet(lh.path(s))) for s in all_specs() if s.layer != "audit")
    facts = dict(
        driver_killed=run.driver_killed,
        kills=[
            {k: kill[k] for k in ("worker", "stage", "executors", "processes", "busy", "lost_tasks", "lost")}
            for kill in run.kills
        ],
        export_shards=shards,
        live_files=sum(live.values()),
        parquet_files_on_disk=on_disk,
        phase1_s=run.phase1_s,
        seconds=run.seconds,
    )
    print(f"\ncluster fault test: {json.dumps(facts)}")
