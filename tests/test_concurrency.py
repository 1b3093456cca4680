"""Two real writer processes at once, on both engines: nothing lost, nothing duplicated, clear conflicts.

The writers stage their files first and then commit at the same moment (a barrier file), which is when
Delta's optimistic concurrency decides: appends both land, overwrites of one table conflict or serialize,
and an insert-only MERGE never duplicates a key.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ENGINES

FIXTURE = Path(__file__).parent / "fixtures" / "concurrent_writer.py"
pytestmark = pytest.mark.slow


def _lockstep(procs: dict, barrier: Path, rounds: list[list[str]]) -> dict[str, tuple[str, str]]:
    """Release each round's processes together: once all of round i touched ``<i>-<name>.ready``, touch
    ``<i>.go``. Returns name → (stdout, stderr); whatever still runs at the end is SIGKILLed."""
    try:
        for i, names in enumerate(rounds):
            deadline = time.time() + 300
            while not all((barrier / f"{i}-{n}.ready").exists() for n in names):
                assert time.time() < deadline, f"round {i}: {names} not ready"
                ended = {n: procs[n].poll() for n in names if procs[n].poll() is not None}
                assert not ended, (
                    f"round {i}: {ended} ended: {[procs[n].communicate()[1][-3000:] for n in ended]}"
                )
                time.sleep(0.05)
            (barrier / f"{i}.go").touch()
        return {name: p.communicate(timeout=300) for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(timeout=60)


# Every race of this module, run by the same three writer processes one round after another: (round name,
# engine, {writer: (table, mode, first_id, n)}). Each round has its own warehouse.
ROUNDS = [
    # w1 writes table a while w2 and w3 append to table c, all three at the same moment: different tables
    # never interact, and Delta lets blind appends to one table commute, so every row lands once.
    *[
        (
            f"tables-{e}",
            e,
            {"w1": ("a", "append", 0, 50), "w2": ("c", "append", 100, 30), "w3": ("c", "append", 130, 30)},
        )
        for e in ENGINES
    ],
    *[
        (f"overwrite-{e}", e, {"w1": ("d", "overwrite", 0, 20), "w2": ("d", "overwrite", 100, 25)})
        for e in ENGINES
    ],
    ("merge-delta-spark", "delta-spark", {"w1": ("e", "merge", 0, 40), "w2": ("e", "merge", 20, 40)}),
]


@pytest.fixture(scope="module")
def races(tmp_path_factory):
    """Round name → (warehouse, engine, {writer: (exit code, output)}), after every round ran."""
    base = tmp_path_factory.mktemp("races")
    barrier = base / "barrier"
    barrier.mkdir()
    plan = [
        {w: [str(base / rname), engine, *task] for w, task in writers.items()}
        for rname, engine, writers in ROUNDS
    ]
    (base / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    names = sorted({w for _, _, writers in ROUNDS for w in writers})
    procs = {
        name: subprocess.Popen(
            [sys.executable, str(FIXTURE), str(base / "plan.json"), str(barrier), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for name in names
    }
    out = _lockstep(procs, barrier, [list(writers) for _, _, writers in ROUNDS])
    for name, p in procs.items():
        assert p.returncode == 0, f"{name} crashed: {out[name][1][-2000:]}"
    results = {rname: {} for rname, _, _ in ROUNDS}
    for name, (stdout, _) in out.items():
        for line in stdout.splitlines():
            r = json.loads(line)
            results[ROUNDS[r["round"]][0]][name] = (r["code"], r["text"])
    return {rname: (base / rname, engine, results[rname]) for rname, engine, _ in ROUNDS}


def _table(spark, warehouse, engine, table):
    sys.path.insert(0, str(FIXTURE.parent))
    from concurrent_writer import spec

    from jobs.tables import open_lakehouse

    return open_lakehouse(spark, str(warehouse), engine), spec(table)


@pytest.mark.parametrize("engine", ENGINES)
def test_writers_of_different_tables_and_appenders_to_one_table(spark, races, engine):
    wh, _, out = races[f"tables-{engine}"]
    assert [out[w][0] for w in ("w1", "w2", "w3")] == [0, 0, 0], out
    lh, a = _table(spark, wh, engine, "a")
    _, c = _table(spark, wh, engine, "c")
    assert sorted(r["id"] for r in lh.read(a).collect()) == list(range(0, 50))
    assert sorted(r["id"] for r in lh.read(c).collect()) == list(range(100, 160))
    writes = sorted(h["run_id"] for h in lh.history(c) if h["operation"] == "WRITE")
    assert writes == ["race-w2", "race-w3"], lh.history(c)


@pytest.mark.parametrize("engine", ENGINES)
def test_two_overwrites_of_one_table_never_mix(spark, races, engine):
    wh, _, out = races[f"overwrite-{engine}"]
    lh, d = _table(spark, wh, engine, "d")
    rows = lh.read(d).collect()
    writers = {r["writer"] for r in rows}
    assert len(writers) == 1  # one writer's rows, never a mixture or a union
    winner = writers.pop()
    expected = list(range(0, 20)) if winner == "w1" else list(range(100, 125))
    assert sorted(r["id"] for r in rows) == expected
    loser = "w2" if winner == "w1" else "w1"
    code, text = out[loser]
    if code == 4:  # lost the race: a clear message that says a rerun is safe
        assert text.startswith("CONFLICT race.d: another writer committed to the table")
        assert "re-running it is safe" in text
        assert lh.history(d)[0]["run_id"] == f"race-{winner}"
    else:  # committed first and was then replaced: the later overwrite wins, as serial order says
        assert lh.history(d)[0]["run_id"] == f"race-{winner}"
        assert lh.history(d)[1]["run_id"] == f"race-{loser}"
    writes = [h["run_id"] for h in lh.history(d) if h["operation"] == "WRITE"]
    assert len(writes) == (1 if code == 4 else 2), lh.history(d)


def test_two_score_merges_never_duplicate_a_key(spark, races):
    """delta-spark commits keyed score chunks with MERGE: overlapping racers insert each key once."""
    wh, engine, out = races["merge-delta-spark"]
    lh, e = _table(spark, wh, engine, "e")
    ids = [r["id"] for r in lh.read(e).collect()]
    committed = [name for name, (code, _) in out.items() if code == 0]
    if len(committed) == 2:
        assert sorted(ids) == list(range(0, 60))  # the second MERGE skipped the 20 keys the first inserted
    else:
        ((code, text),) = [o for o in out.values() if o[0] == 4]
        assert "re-running it is safe" in text
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------- two ingests at once

INGEST_FIXTURE = Path(__file__).parent / "fixtures" / "concurrent_ingest.py"


def _pages(path: Path, ids: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": i, "text": f"page {i} text"}) + "\n" for i in ids))


def _ingest_profile(path: Path, warehouse: Path, pattern: Path) -> Path:
    data = {
        "profile": "race",
        "spark": {"master": "local[1]", "shuffle_partitions": 1, "progress": False, "log_level": "ERROR"},
        "storage": {"engine": "embedded", "warehouse": str(warehouse)},
        "ingest": {"inputs": [{"name": "web", "path": str(pattern)}]},
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_two_ingests_sharing_pages_land_every_page_once(spark, tmp_path):
    """Two ingest processes, disjoint files that share 25 pages, check doc_ids against the same version of
    bronze.documents and commit at the same moment: the loser finds the table moved, checks again against
    the winner's rows, and lands its shared pages as duplicate_doc_id rejects."""
    from jobs.tables import EmbeddedLakehouse
    from schemas import audit as audit_schemas
    from schemas import bronze

    raw, wh, barrier = tmp_path / "raw", tmp_path / "wh", tmp_path / "barrier"
    barrier.mkdir()
    _pages(raw / "p1" / "a.jsonl", [f"a{i}" for i in range(100)])
    _pages(raw / "p1" / "s1.jsonl", [f"s{i}" for i in range(50)])
    _pages(raw / "p2" / "b.jsonl", [f"b{i}" for i in range(100)])
    _pages(raw / "p2" / "s2.jsonl", [f"s{i}" for i in range(25, 75)])  # s25 … s49 are in both
    procs = {
        name: subprocess.Popen(
            [
                sys.executable,
                str(INGEST_FIXTURE),
                str(_ingest_profile(tmp_path / f"{name}.yaml", wh, raw / name / "*.jsonl")),
                str(barrier),
                name,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for name in ("p1", "p2")
    }
    out = _lockstep(procs, barrier, [list(procs)])
    assert [p.returncode for p in procs.values()] == [0, 0], {n: e[-3000:] for n, (_, e) in out.items()}
    run_ids = {n: re.search(r"^ingest run (\S+) started$", o, re.M).group(1) for n, (o, _) in out.items()}
    retried = [n for n, (o, _) in out.items() if "note: bronze.documents moved while this run checked" in o]
    assert len(retried) == 1, out  # both checked the same version; the second commit had to check again
    (loser,) = retried
    (winner,) = set(procs) - {loser}

    lh = EmbeddedLakehouse(spark, str(wh))
    ids = [r["doc_id"] for r in lh.read(bronze.DOCUMENTS).select("doc_id").collect()]
    assert len(ids) == len(set(ids)) == 275
    rejects = lh.read(bronze.REJECTS).collect()
    assert len(rejects) == 25
    assert {(r["reason"], r["ingest_run_id"], r["detail"]) for r in rejects} == {
        ("duplicate_doc_id", run_ids[loser], f"doc_id already in bronze.documents from run {run_ids[winner]}")
    }
    runs = lh.read(audit_schemas.RUNS).filter("status = 'succeeded'").collect()
    assert sorted(r["run_id"] for r in runs) == sorted(run_ids.values())
    # records read = accepted + rejected (+ skipped: none in JSONL) across both runs
    assert sum(r["rows_in"] for r in runs) == 300 == len(ids) + len(rejects)
    assert {r["run_id"]: r["rows_in"] for r in runs} == {run_ids["p1"]: 150, run_ids["p2"]: 150}
    # each was alive while the other started: neither was taken for a killed run
    assert lh.read(audit_schemas.RUNS).filter("status = 'abandoned'").count() == 0
