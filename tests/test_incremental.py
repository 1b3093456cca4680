"""Incremental batches: clean batch A, then batch B (with planted exact and near duplicates of A's
documents), and get what one full clean of A+B gives; A's rows keep their files; a killed run is finished; a
rerun with nothing new writes nothing, for clean and for a whole ``corpuslake run``."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import shutil
from pathlib import Path

import pytest
import yaml

from jobs import clean, ingest, load_refs
from jobs.catalog import all_specs
from jobs.runtime import EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import ref, scores, silver
from tests.conftest import write_conf

ADJ = (
    "old new small large quiet busy green bright dark early late local public private famous simple careful "
    "strong gentle narrow wide empty crowded wooden modern ancient rural urban cheerful tired young clever "
    "rare common honest"
).split()
NOUN = (
    "council farmer library neighbour school river engineer museum market railway student hospital band "
    "village teacher club bakery newspaper volunteer harbour bridge garden festival bread shop report "
    "exhibition map trail fund artist timetable survey hall light roof church course learner letter lane "
    "road forest valley mountain lake island castle kitchen window door street city town family child "
    "doctor nurse driver painter writer singer worker visitor owner mayor officer"
).split()
VERB = (
    "opened repaired described planned celebrated discussed visited improved recorded questioned supported "
    "painted cleaned measured organised welcomed reviewed protected rebuilt found watched helped moved "
    "closed built carried followed joined left reached"
).split()
PREP = "near behind beside under over across around through beyond inside outside along".split()
TAIL = "yesterday again today twice slowly quickly gladly later once openly".split()
QUESTION = (
    "Which planet of the solar system has the largest number of known moons that orbit around it at the "
    "present time"
)


def sentence(rng: random.Random) -> str:
    c = rng.choice
    return (
        f"The {c(ADJ)} {c(NOUN)} {c(VERB)} the {c(ADJ)} {c(NOUN)} {c(PREP)} the {c(NOUN)}, "
        f"and a {c(ADJ)} {c(NOUN)} {c(VERB)} it {c(TAIL)}."
    )


def prose(rng: random.Random) -> str:
    """About 200 words of English prose that passes every default rule; unrelated texts share no 5-gram."""
    return "\n\n".join(" ".join(sentence(rng) for _ in range(4)) for _ in range(3))


def near(rng: random.Random, text: str) -> str:
    """A copy with a run of 8 words replaced: word 5-gram Jaccard about 0.88 to the original."""
    words = text.split(" ")
    start = rng.randrange(20, len(words) - 30)
    fresh = " ".join(sentence(rng) for _ in range(2)).split(" ")[:8]
    return " ".join(words[:start] + fresh + words[start + 8 :])


def batches() -> tuple[dict[str, str], dict[str, str]]:
    """Batch A and batch B (source id → text), with the planted relations in the ids' names."""
    rng = random.Random(13)
    a = {f"a{i:03d}": prose(rng) for i in range(90)}
    a["a-exact"] = a["a000"]  # exact duplicates inside A
    a["a-exact-2"] = "  " + a["a001"].replace(". ", ".  ")
    a["a-near"] = near(rng, a["a002"])  # near duplicates inside A
    a["a-near-2"] = near(rng, a["a003"])
    a["a-contaminated"] = prose(rng) + "\n\n" + QUESTION + "?"
    a["a-short"] = "Too short to be a document."
    b = {f"b{i:03d}": prose(rng) for i in range(50)}
    b["b-copy-of-a010"] = a["a010"]  # exact duplicates of A's documents
    b["b-copy-of-a011"] = a["a011"].replace(". ", ".   ")  # the same text once whitespace is collapsed
    b["b-copy-of-a-exact"] = a["a-exact"]  # a copy of A's exact duplicate: A's survivor survives
    b["b-copy-of-a-near"] = a["a-near"]  # exact copy of A's near duplicate
    b["b-copy-of-a-contaminated"] = a["a-contaminated"]
    b["b-near-a020"] = near(rng, a["a020"])  # near duplicates of A's documents
    b["b-near-a021"] = near(rng, a["a021"])
    b["b-near-a-near"] = near(rng, a["a-near"])  # joins A's cluster {a002, a-near}
    b["b-near-a-contaminated"] = near(rng, a["a-contaminated"])
    b["b-chain-1"] = near(rng, a["a030"])  # a chain through a new document: a030 ~ b-chain-1 ~ b-chain-2
    b["b-chain-2"] = near(rng, b["b-chain-1"])
    b["b-exact"] = b["b000"]  # duplicates inside B
    b["b-near"] = near(rng, b["b001"])
    b["b-short"] = "Also far too short."
    return a, b


def _write(path: Path, docs: dict[str, str]) -> None:
    path.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items()))


def _args(conf: Path, full: bool = False, overrides: list[str] | None = None) -> argparse.Namespace:
    return argparse.Namespace(
        conf=str(conf), overrides=overrides or [], run_id=None, verbose=False, full=full
    )


def _stage(module, body, conf: Path, **kw) -> tuple[int, str]:
    out = io.StringIO()
    reads = getattr(module, "READS", ())
    code = run_job(module.STAGE, _args(conf, **kw), body, reads, out=out)
    return code, out.getvalue()


def _lake(tmp: Path, name: str) -> tuple[Path, Path]:
    """A profile over ``<tmp>/<name>/raw/*.jsonl`` and a warehouse beside it; (profile, raw folder)."""
    base = tmp / name
    raw = base / "raw"
    raw.mkdir(parents=True)
    bench = base / "quiz_test.jsonl"
    bench.write_text(json.dumps({"question": QUESTION + "?"}) + "\n")
    conf = write_conf(
        base / "c.yaml",
        base / "wh",
        [{"name": "web", "path": str(raw / "*.jsonl")}],
        sections={"refs": {"benchmarks": [{"path": str(bench)}]}},
    )
    return conf, raw


def _ok(code_out: tuple[int, str]) -> str:
    code, out = code_out
    assert code == EXIT_OK, out
    return out


def _ingest(conf):
    return _ok(_stage(ingest, ingest.ingest, conf))


def _clean(conf, **kw):
    return _stage(clean, clean.clean, conf, **kw)


def _lh(spark, conf: Path) -> EmbeddedLakehouse:
    return EmbeddedLakehouse(spark, yaml.safe_load(conf.read_text())["storage"]["warehouse"])


def _ids(lh) -> dict[str, str]:
    from schemas import bronze

    return {
        r["source_id"]: r["doc_id"] for r in lh.read(bronze.DOCUMENTS).select("source_id", "doc_id").collect()
    }


def decisions(lh) -> dict[str, list]:
    """Everything the clean decided, without run ids and times."""
    return {
        "kept": sorted(r[0] for r in lh.read(silver.DOCUMENTS).select("doc_id").collect()),
        "filtered": sorted(
            (r["doc_id"], r["step"], r["reason"], r["survivor_id"], round(r["value"] or 0.0, 9))
            for r in lh.read(silver.FILTERED).collect()
        ),
        "index": sorted(
            (r["doc_id"], r["step"], r["survivor_id"], r["text_hash"], tuple(r["sig"] or ()))
            for r in lh.read(silver.DEDUP_INDEX).collect()
        ),
        "quality": sorted((r["doc_id"], r["kept"]) for r in lh.read(scores.QUALITY).collect()),
    }


def _files(lh) -> dict[str, set[str]]:
    return {s.name: {f["path"] for f in lh.snapshot_files(s)} for s in clean_outputs()}


def clean_outputs():
    from jobs.clean_batches import OUTPUTS

    return OUTPUTS


def _versions(lh) -> dict[str, int | None]:
    return {s.name: lh.version(s) for s in all_specs() if s.layer != "audit"}


@pytest.fixture(scope="module")
def lakes(spark, tmp_path_factory):
    """The incremental lake (ingest A, clean, ingest B, clean) with copies of its warehouse after A's clean
    and after B's ingest, and the all-at-once lake: the same two ingest runs (bronze and ref copied from the
    incremental lake before its second clean), cleaned once with --full."""
    tmp = tmp_path_factory.mktemp("incremental")
    a, b = batches()
    inc, raw = _lake(tmp, "inc")
    _write(raw / "a.jsonl", a)
    _ingest(inc)
    _ok(_stage(load_refs, load_refs.load_refs, inc))
    _ok(_clean(inc))
    lh = _lh(spark, inc)
    after_a = {"files": _files(lh), "decisions": decisions(lh)}
    shutil.copytree(tmp / "inc" / "wh", tmp / "after-a")
    _write(raw / "b.jsonl", b)
    _ingest(inc)
    shutil.copytree(tmp / "inc" / "wh", tmp / "after-b-ingest")
    second = _ok(_clean(inc))

    once = _copy(tmp / "after-b-ingest", inc, tmp / "once", layers=("bronze", "ref"))
    _ok(_clean(once, full=True))
    return {
        "inc": inc,
        "once": once,
        "after_a": after_a,
        "after_a_wh": tmp / "after-a",
        "after_b_wh": tmp / "after-b-ingest",
        "second": second,
        "tmp": tmp,
        "a": a,
        "b": b,
    }


def _copy(wh: Path, conf: Path, base: Path, layers: tuple[str, ...] | None = None) -> Path:
    """A profile like ``conf`` over a copy of warehouse ``wh`` (only ``layers`` of it, if given)."""
    base.mkdir(parents=True)
    for layer in layers or [p.name for p in wh.iterdir()]:
        shutil.copytree(wh / layer, base / "wh" / layer)
    data = yaml.safe_load(conf.read_text())
    data["storage"]["warehouse"] = str(base / "wh")
    out = base / "c.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_incremental_clean_equals_one_clean_of_everything(spark, lakes):
    inc, once = _lh(spark, lakes["inc"]), _lh(spark, lakes["once"])
    got, want = decisions(inc), decisions(once)
    assert got["kept"] == want["kept"]
    assert got["filtered"] == want["filtered"]
    assert got["index"] == want["index"]
    assert got["quality"] == want["quality"]
    # The second run read only B: its funnel starts from B's documents.
    assert f"  bronze documents read: {len(lakes['b']):,}" in lakes["second"]
    assert "  batch: incremental: " in lakes["second"]


def test_duplicates_of_older_documents_name_the_older_survivor(spark, lakes):
    lh = _lh(spark, lakes["inc"])
    ids = _ids(lh)
    filtered = {r["doc_id"]: r for r in lh.read(silver.FILTERED).collect()}

    def decided(source_id):
        r = filtered[ids[source_id]]
        return r["step"], r["survivor_id"]

    assert decided("b-copy-of-a010") == ("exact_dedup", ids["a010"])
    assert decided("b-copy-of-a011") == ("exact_dedup", ids["a011"])
    # Inside A (one ingest time) the smallest doc_id survived; B's copies point at A's survivors.
    a_exact = min(ids["a000"], ids["a-exact"])
    a_near = min(ids["a002"], ids["a-near"])
    assert decided("b-copy-of-a-exact") == ("exact_dedup", a_exact)
    assert decided("b-copy-of-a-near") == ("exact_dedup", ids["a-near"])
    assert decided("b-copy-of-a-contaminated") == ("exact_dedup", ids["a-contaminated"])
    assert decided("b-near-a020") == ("near_dedup", ids["a020"])
    assert decided("b-near-a021") == ("near_dedup", ids["a021"])
    assert decided("b-near-a-near") == ("near_dedup", a_near)  # A's cluster keeps its survivor
    assert decided("b-near-a-contaminated") == ("near_dedup", ids["a-contaminated"])
    assert decided("b-chain-1") == decided("b-chain-2") == ("near_dedup", ids["a030"])
    # Inside B, with one ingest time for the batch, the smallest doc_id survives.
    first, second = sorted([ids["b000"], ids["b-exact"]])
    assert filtered[second]["survivor_id"] == first and first not in filtered
    # The rule decided something: a copy in B has a smaller doc_id than its original in A, which survives.
    assert any(ids[f"b-copy-of-{x}"] < ids[x] for x in ("a010", "a011", "a-near", "a-contaminated")) or any(
        ids[f"b-near-{x}"] < ids[x] for x in ("a020", "a021")
    )
    # A's decisions are unchanged.
    before = lakes["after_a"]["decisions"]
    now = decisions(lh)
    assert set(before["filtered"]) <= set(now["filtered"]) and set(before["kept"]) <= set(now["kept"])


def test_earlier_rows_keep_their_files(spark, lakes):
    lh = _lh(spark, lakes["inc"])
    now = _files(lh)
    for table, files in lakes["after_a"]["files"].items():
        assert files and files <= now[table], table  # A's files are still the table's, none rewritten
        assert now[table] - files, table  # and B's rows came in new files


def test_rerun_with_nothing_new_writes_no_table_version(spark, lakes):
    lh = _lh(spark, lakes["inc"])
    before = _versions(lh)
    out = _ok(_clean(lakes["inc"]))
    assert _versions(lh) == before
    (line,) = [x for x in out.splitlines() if x.startswith("clean run ") and not x.endswith(" started")]
    want = f"nothing new: every document of bronze.documents v{before['bronze.documents']} is in silver"
    assert line.endswith(f"{want} already; nothing written")

    # New benchmarks: earlier documents are not checked again, and the summary says so.
    bench = lakes["tmp"] / "inc" / "quiz_test.jsonl"
    bench.write_text(bench.read_text() + json.dumps({"question": "Name the longest river in Europe."}) + "\n")
    _ok(_stage(load_refs, load_refs.load_refs, lakes["inc"]))
    out = _ok(_clean(lakes["inc"]))
    v = lh.version(ref.BENCHMARKS)
    assert (
        f"  note: ref.benchmarks is v{v} now; silver's earlier documents were decontaminated against "
        f"v{before['ref.benchmarks']} and are not checked again by an incremental clean "
        "(`corpuslake run --from clean --full` does)"
    ) in out


def test_a_run_that_died_between_its_commits_is_finished(spark, lakes, monkeypatch, capsys):
    from jobs import faults

    conf = _copy(lakes["after_b_wh"], lakes["inc"], lakes["tmp"] / "killed")
    real = faults.fault_point

    def die_after_filtered(name, table):
        if name == "after_commit" and table == silver.FILTERED.name:
            raise RuntimeError("killed between the commits")
        real(name, table)

    monkeypatch.setattr(faults, "fault_point", die_after_filtered)
    code, out = _clean(conf)
    assert code != EXIT_OK
    (killed,) = [x.split()[2] for x in out.splitlines() if x.startswith("clean run ")]
    monkeypatch.setattr(faults, "fault_point", real)
    lh = _lh(spark, conf)
    half = decisions(lh)
    assert len(half["kept"]) > len(lakes["after_a"]["decisions"]["kept"])  # documents and filtered landed
    assert half["quality"] == lakes["after_a"]["decisions"]["quality"]  # quality and the index did not

    # Batch C arrives before the rerun: the rerun finishes the killed run's batch, then cleans C.
    rng = random.Random(17)
    c = {f"c{i:02d}": prose(rng) for i in range(5)}
    c.update({"c-copy-of-a010": lakes["a"]["a010"], "c-near-b005": near(rng, lakes["b"]["b005"])})
    (lakes["tmp"] / "killed" / "raw").mkdir()
    _write(lakes["tmp"] / "killed" / "raw" / "c.jsonl", c)
    data = yaml.safe_load(conf.read_text())
    data["ingest"]["inputs"].append({"name": "later", "path": str(lakes["tmp"] / "killed" / "raw" / "*")})
    conf.write_text(yaml.safe_dump(data))
    _ingest(conf)
    out = _ok(_clean(conf))
    assert (
        f"  finished the batch of run {killed} ({len(lakes['b']):,} documents): it ended after committing "
        "silver.documents, silver.filtered; scores.quality, silver.dedup_index, scores.pii committed now"
    ) in out
    assert f"  bronze documents read: {len(c)}" in out  # then its own batch: C
    ids = _ids(lh)
    of_c = {ids[k] for k in c}
    got, want = decisions(lh), decisions(_lh(spark, lakes["once"]))
    for key in got:  # A and B as one clean of A+B decided them
        assert [r for r in got[key] if (r if isinstance(r, str) else r[0]) not in of_c] == want[key], key
    filtered = {r[0]: r for r in got["filtered"]}
    assert filtered[ids["c-copy-of-a010"]][1:4] == ("exact_dedup", "exact_duplicate", ids["a010"])
    assert filtered[ids["c-near-b005"]][1:4] == ("near_dedup", "near_duplicate", ids["b005"])
    # Every bronze document once in silver (kept or filtered), once in scores.quality, and in the index
    # unless the rules dropped it: nothing lost or doubled across the crash.
    kept = got["kept"]
    assert len(kept) + len(filtered) == len(ids) == len(set(kept) | set(filtered))
    assert [d for d, _ in got["quality"]] == sorted(ids.values())
    rules = {d for d, r in filtered.items() if r[1] == "rules"}
    assert sorted(r[0] for r in got["index"]) == sorted(set(ids.values()) - rules)
    capsys.readouterr()


def test_changed_clean_settings_stop_with_the_full_recompute(spark, lakes, capsys):
    conf = _copy(lakes["after_b_wh"], lakes["inc"], lakes["tmp"] / "settings")
    lh = _lh(spark, conf)
    before = _versions(lh)
    code, _ = _clean(conf, overrides=["clean.near_dedup.threshold=0.7"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "the clean settings changed since silver was built" in err
    assert "`corpuslake run --from clean --full`" in err
    assert _versions(lh) == before
    # --full is the way out: it rebuilds silver under the new settings, whatever the ledger says.
    from jobs import clean_batches
    from jobs.config import load_conf
    from jobs.freshness import conf_fingerprint

    changed = conf_fingerprint(load_conf(conf, ["clean.near_dedup.threshold=0.7"]), ("clean",))
    ledger, done = clean_batches.ledger(lh), clean_batches.recorded(lh)
    plan = clean_batches.plan(lh, ledger, done, "r", set(), changed, full=True)
    assert plan.finish == [] and plan.base is not None


def test_whole_pipeline_rerun_with_nothing_new_writes_no_table_version(spark, pipeline, tmp_path):
    """``corpuslake run`` twice over the pipeline lake (a copy): the rerun commits to no data table."""
    from jobs import cli

    shutil.copytree(pipeline.warehouse, tmp_path / "wh")
    shutil.copytree(pipeline.export, tmp_path / "export")
    data = yaml.safe_load(Path(pipeline.conf).read_text())
    data["storage"]["warehouse"] = str(tmp_path / "wh")
    data["export"]["path"] = str(tmp_path / "export")
    conf = tmp_path / "again.yaml"
    conf.write_text(yaml.safe_dump(data, sort_keys=False))
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    before = _versions(lh)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["run", "--conf", str(conf)])
    text = out.getvalue()
    assert code == EXIT_OK, text
    assert _versions(lh) == before
    for stage in cli.STAGES:
        assert "nothing new" in _summary_line(text, stage)

    # Another select budget: the stages whose kept share follows it run again (perplexity correlations'
    # keep_ratio, BETR's threshold), then select and the export of its new selection; nothing else.
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["run", "--conf", str(conf), "--set", "select.token_budget=15000"])
    text = out.getvalue()
    assert code == EXIT_OK, text
    after = _versions(lh)
    assert {t for t in after if after[t] != before[t]} == {
        "gold.domain_correlations",
        "gold.doc_scores",
        "gold.selection",
    }
    ran = {s for s in cli.STAGES if "nothing new" not in _summary_line(text, s)}
    assert ran == {"aggregate_domains", "aggregate_docs", "select", "export"}


def _summary_line(text: str, stage: str) -> str:
    (line,) = [x for x in text.splitlines() if x.startswith(f"{stage} run ") and not x.endswith(" started")]
    return line


@pytest.mark.parametrize("verify", ["estimate", "exact"])
def test_dedup_against_earlier_documents_equals_dedup_of_all(spark, verify):
    """``link_near`` and ``exact_duplicates`` with ``old``: the new documents' decisions are those of one
    pass over everything (ids of earlier documents sort first, as order keys do)."""
    from pyspark.sql import functions as F

    from jobs.methods import dedup

    rng = random.Random(5)
    old = {f"a{i:02d}": prose(rng) for i in range(12)}
    old["a-near"] = near(rng, old["a00"])
    new = {f"b{i:02d}": prose(rng) for i in range(8)}
    new.update({"b-near-a01": near(rng, old["a01"]), "b-near-a-near": near(rng, old["a-near"])})
    new.update(
        {
            "b-copy": old["a02"],
            "b-chain": near(rng, old["a03"]),
            "b-near-b00": near(rng, new["b00"]),
        }
    )
    new["b-link"] = near(rng, new["b-chain"])  # through b-chain to a03
    args = dict(num_perm=128, bands=20, rows=6, threshold=0.8, verify=verify)

    def frame(docs):
        return spark.createDataFrame(list(docs.items()), "doc_id string, text string")

    everything, _ = dedup.near_duplicates(**args)(frame({**old, **new}))
    want = {
        r["doc_id"]: (r["survivor_id"], round(r["jaccard"], 9))
        for r in everything.collect()
        if r["doc_id"] in new
    }
    earlier, _ = dedup.near_duplicates(**args)(frame(old))
    survivors = {r["doc_id"]: r["survivor_id"] for r in earlier.collect()}
    sig = dedup.minhash_signatures(128, 5, 42)
    old_rows = (
        frame(old)
        .transform(sig)
        .withColumn(
            "component",
            F.coalesce(
                F.create_map(*[F.lit(x) for kv in survivors.items() for x in kv])[F.col("doc_id")], "doc_id"
            ),
        )
    )
    link = dedup.link_near(20, 6, 0.8, 1000, verify, 5)
    texts = frame(old)
    got, _ = link(
        frame(new).transform(sig), frame(new), old_rows, lambda ids: texts.join(ids, "doc_id", "left_semi")
    )
    assert {r["doc_id"]: (r["survivor_id"], round(r["jaccard"], 9)) for r in got.collect()} == want
    assert want["b-near-a-near"][0] == survivors.get("a-near", "a-near") and want["b-link"][0] == "a03"

    keyed = frame({**old, **new}).select("doc_id", F.sha2("text", 256).alias("text_hash"))
    every = {r["doc_id"]: r["survivor_id"] for r in keyed.transform(dedup.exact_duplicates()).collect()}
    against = keyed.filter(F.col("doc_id").startswith("b")).transform(
        dedup.exact_duplicates(old=keyed.filter(F.col("doc_id").startswith("a")))
    )
    assert {r["doc_id"]: r["survivor_id"] for r in against.collect()} == {
        d: s for d, s in every.items() if d in new
    }
