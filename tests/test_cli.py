"""What users touch from a shell: ``corpuslake run/stage/tables/history/sql``, saved queries, progress."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections import Counter

import pandas as pd
import pytest
from pyspark.sql import functions as F
from scipy import stats

from jobs import cli, queries
from jobs.catalog import all_specs, connect
from jobs.config import load_conf
from jobs.progress import Ticker, fmt_seconds, rate_line
from jobs.tables import EmbeddedLakehouse
from schemas import audit, bronze, gold, scores, silver

STAGES = list(cli.STAGES)


@pytest.fixture(scope="module")
def lake(pipeline):
    """The pipeline lakehouse, connected with every table registered for SQL."""
    conf = load_conf(pipeline.conf)
    spark, lh = connect(conf)
    return spark, lh, conf


def _main(argv, capsys) -> tuple[int, str, str]:
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def _stderr_lines(err: str) -> list[str]:
    # The JVM's own start-up notice is not ours to count.
    return [line for line in err.splitlines() if line.strip() and "incubator modules" not in line]


# ---------------------------------------------------------------------------------------------- run


def _closing_rows(stdout: str) -> dict[str, list[str]]:
    table = stdout[stdout.rindex("\nstage ") :].strip().splitlines()
    rows = {}
    for line in table[1:]:  # up to the total row (a run with --events prints its funnel check after it)
        rows[line.split()[0]] = line.split()
        if line.startswith("total"):
            break
    return rows


def test_run_runs_every_stage_and_closes_with_a_table(pipeline, lake):
    spark, lh, _ = lake
    rows = _closing_rows(pipeline.stdout)
    assert list(rows) == [*STAGES, "total"]
    assert "\nDelta engine: embedded\nstage " in pipeline.stdout
    assert all(rows[s][1] == "ok" for s in STAGES)
    landed = lh.read(bronze.DOCUMENTS).count() + lh.read(bronze.REJECTS).count()
    # Records read = documents + rejects + records of other types skipped (the sample's warcinfo, request).
    m = re.search(
        r"records read: ([\d,]+) = accepted ([\d,]+) \+ rejected ([\d,]+) \+ skipped ([\d,]+)",
        pipeline.stdout,
    )
    read, accepted, rejected, skipped = (int(g.replace(",", "")) for g in m.groups())
    assert accepted + rejected == landed and read == landed + skipped and skipped == 2
    assert rows["ingest"][3] == f"{read:,}" and rows["ingest"][4] == f"{landed:,}"
    kept, filtered = lh.read(silver.DOCUMENTS).count(), lh.read(silver.FILTERED).count()
    assert rows["clean"][4] == f"{kept + filtered:,}"
    assert rows["select"][4] == f"{lh.read(gold.SELECTION).count():,}"
    assert f"gold.selection v{lh.version(gold.SELECTION)}" in " ".join(rows["select"])
    # every stage's summary came before the table, in pipeline order
    starts = [pipeline.stdout.index(f"{s} run ") for s in STAGES]
    assert starts == sorted(starts)


def test_run_from_to_reruns_only_that_range(pipeline, lake, tmp_path, capsys):
    _, lh, _ = lake
    wh = tmp_path / "wh"
    shutil.copytree(pipeline.warehouse, wh)
    before = {s.name: lh.version(s) for s in all_specs()}
    code, out, err = _main(
        [
            "run",
            "--conf",
            pipeline.conf,
            "--from",
            "select",
            "--to",
            "export",
            "--set",
            f"storage.warehouse={wh}",
            "--set",
            f"export.path={tmp_path / 'export'}",
        ],
        capsys,
    )
    assert code == 0, err
    rows = _closing_rows(out)
    assert list(rows) == ["select", "export", "total"]
    copy = EmbeddedLakehouse(lh.spark, str(wh))
    after = {s.name: copy.version(s) for s in all_specs()}
    changed = {t for t in after if after[t] != before[t]}
    assert changed == {"gold.selection", "audit.runs", "audit.expectations"}
    assert after["gold.selection"] == before["gold.selection"] + 1
    # same inputs, same selection
    cols = ["strategy", "doc_id", "rank", "cum_tokens"]
    old = lh.read(gold.SELECTION).select(cols).toPandas().sort_values(cols).reset_index(drop=True)
    new = copy.read(gold.SELECTION).select(cols).toPandas().sort_values(cols).reset_index(drop=True)
    pd.testing.assert_frame_equal(old, new)
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == sorted(old["strategy"].unique())


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv",
    [
        ["stage", "nope"],
        ["run", "--from", "nope"],
        ["run", "--from", "export", "--to", "ingest"],
        ["run", "--conf", "no/such/profile.yaml"],
        ["run", "--conf", "{conf}", "--set", "select.token_budgt=5"],
        ["run", "--conf", "{conf}", "--set", "select.token_budget=lots"],
        ["run", "--conf", "{conf}", "--set", "novalue"],
        ["frobnicate"],
        ["run", "--frm", "clean"],
        ["sql", "--conf", "{conf}"],
        ["sql", "no/such/query.sql", "--conf", "{conf}"],
        ["sql", "selec * frm gold.selection", "--conf", "{conf}"],
        ["history", "gold.nope", "--conf", "{conf}"],
    ],
    ids=lambda a: " ".join(a),
)
def test_bad_input_is_one_line_and_exit_2(pipeline, capsys, argv):
    code, out, err = _main([a.format(conf=pipeline.conf) for a in argv], capsys)
    assert code == 2
    lines = _stderr_lines(err)
    assert len(lines) == 1, err
    assert "error" in lines[0] and "Traceback" not in err


def test_bad_input_exit_code_of_the_installed_command(python):
    proc = subprocess.run(
        [python, "-m", "jobs.cli", "stage", "nope"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "corpuslake stage: error: argument NAME: unknown stage 'nope'; stages in order: "
        + ", ".join(STAGES)
        + " (see corpuslake stage --help)"
    ]


@pytest.mark.parametrize("command", ["run", "stage", "demo", "tables", "history", "sql", "report", "sample"])
def test_help_everywhere(command, capsys):
    code, out, _ = _main([command, "--help"], capsys)
    assert code == 0
    assert out.startswith(f"usage: corpuslake {command}")


def test_top_level_help_lists_commands_and_exit_codes(capsys):
    code, out, _ = _main(["--help"], capsys)
    assert code == 0
    for command in ("run", "stage", "demo", "tables", "history", "sql", "report"):
        assert re.search(rf"^\s+{command}\s", out, re.M), command
    assert "0 ok, 1 other error, 2 bad usage or conf, 3 a gate failed" in " ".join(out.split())


# ---------------------------------------------------------------------------------- read commands


def test_tables_lists_versions_rows_last_run_and_gate(pipeline, lake, capsys):
    spark, lh, _ = lake
    code, out, err = _main(["tables", "--conf", pipeline.conf], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == f"tables under {lh.warehouse} (embedded Delta engine)"
    listing, runs = out.split("\n\n")
    lines = {line.split()[0]: line.split() for line in listing.splitlines()[2:]}
    latest = Counter(
        r["status"]
        for r in lh.read(audit.RUNS)
        .groupBy("run_id")
        .agg(F.max_by("status", F.coalesce("ended_at", "started_at")).alias("status"))
        .collect()
    )
    assert latest["succeeded"] >= len(STAGES)
    shown = {s: int(n) for n, s in re.findall(r"(\d+) (\w+)", runs.splitlines()[0])}
    assert shown == dict(latest), runs
    assert list(lines) == [s.name for s in all_specs()]
    ended = {
        r["t"]: r["ended"]
        for r in lh.read(audit.RUNS)
        .filter("status = 'succeeded'")
        .select(F.explode("tables_written").alias("t", "v"), "ended_at")
        .groupBy("t")
        .agg(F.max("ended_at").alias("ended"))
        .collect()
    }
    for spec in all_specs():
        name, version, rows = lines[spec.name][:3]
        assert int(version) == lh.version(spec)
        assert int(rows) == lh.read(spec).count()
        if spec.layer != "audit":
            assert " ".join(lines[spec.name][3:5]) == f"{ended[spec.name]:%Y-%m-%d %H:%M:%S}"
            assert lines[spec.name][5] == "passed"


def test_history_lists_every_version_with_its_run(pipeline, lake, capsys):
    _, lh, _ = lake
    code, out, _ = _main(["history", "scores.perplexity", "--conf", pipeline.conf], capsys)
    assert code == 0
    versions = [int(line.split()[0][1:]) for line in out.splitlines()]
    assert versions == list(range(lh.version(scores.PERPLEXITY), -1, -1))
    run_ids = {line.split("run=")[1] for line in out.splitlines()[:-1]}
    (score_run,) = run_ids
    assert score_run.startswith("score_perplexity-")


def test_sql_takes_text_a_saved_name_or_a_file(pipeline, lake, tmp_path, capsys):
    _, lh, _ = lake
    n = lh.read(silver.DOCUMENTS).count()
    code, out, _ = _main(
        ["sql", "select count(*) as n from silver.documents", "--conf", pipeline.conf], capsys
    )
    assert code == 0 and f"|{n}|" in out.replace(" ", "")
    code, out, _ = _main(["sql", "funnel", "--conf", pipeline.conf], capsys)
    assert code == 0 and "|clean|decontamination|" in out.replace(" ", "")
    assert out.replace(" ", "").split("|decontamination|")[1].split("|")[1] == str(n)
    f = tmp_path / "q.sql"
    f.write_text("select count(distinct strategy) as s from gold.selection")
    code, out, _ = _main(["sql", str(f), "--conf", pipeline.conf], capsys)
    assert code == 0 and "|5|" in out.replace(" ", "")
    code, out, _ = _main(["sql", "--list"], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(queries.saved_queries())


def _lake_missing_a_file(spark, tmp_path) -> tuple[str, str, str]:
    """A warehouse whose audit.runs (version 1) lost one of its data files: (profile, folder, file)."""
    from jobs import audit as audit_job
    from tests.conftest import write_conf

    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    audit_job.start_run(lh, "ingest", "lost-run")
    f = sorted(lh.snapshot_files(audit.RUNS), key=lambda f: f["path"])[0]
    os.remove(f["uri"])
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": "unused/*"}])
    return str(conf), lh.path(audit.RUNS), f["path"]


@pytest.mark.slow
def test_sql_on_a_missing_data_file_is_one_line_and_exit_1(spark, tmp_path, python, capsys, lake):
    try:
        _check_missing_data_file(spark, tmp_path, python, capsys)
    finally:
        # The in-process `sql` registered the broken lake's tables under the SQL names: give them back to
        # the module's lake, which the saved-query tests below read.
        connect(lake[2])


def _check_missing_data_file(spark, tmp_path, python, capsys) -> None:
    conf, folder, lost = _lake_missing_a_file(spark, tmp_path)
    want = (
        f"error: audit.runs: data file {lost} is missing from {folder} (version 1 of the table needs it); "
        "restore it from a backup, or see `corpuslake history audit.runs`"
    )
    # The installed command in its own process: no Java or Python trace reaches the terminal.
    proc = subprocess.run(
        [python, "-m", "jobs.cli", "sql", "select * from audit.runs", "--conf", conf],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert _stderr_lines(proc.stderr) == [want]
    # --verbose keeps the trace, then the same line.
    code, out, err = _main(["sql", "select * from audit.runs", "--conf", conf, "--verbose"], capsys)
    assert code == 1
    assert "Traceback (most recent call last)" in err and "FileNotFoundException" in err
    assert err.strip().splitlines()[-1] == want


# ----------------------------------------------------------------------------------- saved queries


def test_every_saved_query_runs_and_says_what_it_shows(lake):
    spark, _, _ = lake
    saved = queries.saved_queries()
    assert {"funnel", "score_summary", "domain_weights", "selection_composition"} <= set(saved)
    for name, about in saved.items():
        assert len(about) > 20, name
        code = "\n".join(line for line in queries.sql_text(name).splitlines() if not line.startswith("--"))
        assert not re.search(r"(?<![:\w]):[A-Za-z_]\w*|\{\w+\}", code), f"{name} takes parameters"
        spark.sql(queries.sql_text(name)).collect()


def _q(spark, name) -> pd.DataFrame:
    return spark.sql(queries.sql_text(name)).toPandas()


def test_funnel_reconciles_with_the_tables(lake):
    spark, lh, _ = lake
    f = _q(spark, "funnel")
    assert list(f["step"]) == ["records read", "rejected", *silver.STEPS, *silver.LATER_STEPS]
    docs, rejects = lh.read(bronze.DOCUMENTS).count(), lh.read(bronze.REJECTS).count()
    assert f["remaining"].iloc[0] == docs + rejects and f["removed"].iloc[1] == rejects
    by_step = lh.read(silver.FILTERED).groupBy("step").count().toPandas().set_index("step")["count"]
    clean = f[f["stage"] == "clean"].set_index("step")
    assert clean["removed"].to_dict() == {s: int(by_step.get(s, 0)) for s in clean.index}
    # silver.documents is what the clean steps leave; the perplexity filter's drops stay in it, and
    # selection skips them.
    n_silver = lh.read(silver.DOCUMENTS).count()
    assert clean["remaining"].iloc[-1] == n_silver
    assert f["remaining"].iloc[-1] == n_silver - int(by_step.get("perplexity", 0))


def test_selection_queries_equal_a_pandas_computation(lake):
    spark, lh, _ = lake
    sel = lh.read(gold.SELECTION).toPandas()
    comp = _q(spark, "selection_composition")
    for strategy, g in sel.groupby("strategy"):
        c = comp[comp["strategy"] == strategy]
        assert c["tokens"].sum() == g["tokens"].sum() == g["cum_tokens"].max()
        assert c["docs"].sum() == len(g)
        assert c["token_share"].sum() == pytest.approx(1.0, abs=1e-3)
    overlap = _q(spark, "selection_overlap")
    sets = {s: set(g["doc_id"]) for s, g in sel.groupby("strategy")}
    for r in overlap.itertuples():
        a, b = sets[r.strategy_a], sets[r.strategy_b]
        assert r.shared_docs == len(a & b)
        assert r.jaccard == pytest.approx(len(a & b) / len(a | b), abs=1e-4)


def test_estimator_agreement_is_the_spearman_of_domain_ranks(lake):
    spark, lh, _ = lake
    corr = lh.read(gold.DOMAIN_CORRELATIONS).filter("projection = 'linear'").toPandas()
    ranks = corr.pivot(index="domain", columns="estimator", values="rank")
    agree = _q(spark, "estimator_agreement")
    assert len(agree) == 10
    for r in agree.itertuples():
        rho = stats.spearmanr(ranks[r.estimator_a], ranks[r.estimator_b]).statistic
        assert r.rank_corr == pytest.approx(rho, abs=1e-4)


def test_score_summary_bpb_per_model(lake):
    spark, lh, _ = lake
    ppl = lh.read(scores.PERPLEXITY).toPandas()
    s = _q(spark, "score_summary").query("signal == 'bpb'").set_index("model")
    for model, g in ppl.groupby("model_id"):
        assert s.loc[model, "docs"] == len(g)
        assert s.loc[model, "mean"] == pytest.approx(g["bpb"].mean(), abs=1e-4)
        assert s.loc[model, "median"] == pytest.approx(g["bpb"].median(), abs=1e-4)


# ---------------------------------------------------------------------------------------- progress


def test_ticker_prints_documents_rate_and_eta_while_a_stage_runs(spark):
    from pyspark.sql.types import LongType, StructField, StructType

    from jobs.scoring import model_transform

    def slow(spec, pdf):
        time.sleep(0.4)  # a model's work on the batch
        return pd.DataFrame({"n_tokens": pdf["text"].str.len().astype("int64")})

    schema = StructType([StructField("doc_id", LongType()), StructField("n_tokens", LongType())])
    docs = spark.range(48).selectExpr("id as doc_id", "repeat('x', cast(id as int)) as text").repartition(8)
    out = io.StringIO()
    with Ticker(spark, "score_x", enabled=True, interval_s=0.3, out=out) as ticker:
        with ticker.count("lm-a", 48) as acc:
            rows = docs.transform(model_transform(None, "causal_lm", schema, ["doc_id"], score=slow))
            assert rows.agg(F.sum("n_tokens")).first()[0] == sum(range(48))
            assert acc.value == 48
            last = ticker.line()
        with ticker.phase("lm-a: 48 docs scored; gate and commit scores.perplexity"):
            assert ticker.line().endswith("] lm-a: 48 docs scored; gate and commit scores.perplexity")
    assert re.fullmatch(r"\[score_x 0:0\d\] lm-a: 48/48 docs \(100%\)  [\d.,]+ docs/s  ETA -", last), last
    lines = [line.strip() for line in out.getvalue().split("\n") if line.strip()]
    assert lines, "no progress line in a 2-second stage"
    partial = [m for m in (re.search(r"lm-a: (\d+)/48 docs \((\d+)%\)", s) for s in lines) if m]
    assert partial and all(int(m.group(2)) == round(100 * int(m.group(1)) / 48) for m in partial)


def test_ticker_is_quiet_when_disabled_or_short(spark):
    out = io.StringIO()
    with Ticker(spark, "s", enabled=False, interval_s=0.05, out=out) as ticker:
        with ticker.count("m", 10) as acc:
            spark.range(10).foreach(lambda r: acc.add(1))
        time.sleep(0.2)
    assert out.getvalue() == "" and acc.value == 10
    with Ticker(spark, "s", enabled=True, interval_s=30, out=out):
        spark.range(10).count()
    assert out.getvalue() == ""


def test_rate_and_eta_format():
    assert rate_line("lm-a", 250, 1000, 10.0) == "lm-a: 250/1,000 docs (25%)  25.0 docs/s  ETA 0:30"
    assert rate_line("lm-a", 0, 1000, 10.0) == "lm-a: 0/1,000 docs (0%)  0.0 docs/s  ETA -"
    assert rate_line("ingest", 5000, None, 2.0, "records") == "ingest: 5,000 records  2,500.0 records/s"
    assert fmt_seconds(3725) == "1:02:05" and fmt_seconds(65.4) == "1:05"


def test_demo_ends_with_each_phase_time_and_the_total():
    from jobs.cli import phase_lines

    lines = phase_lines([("sample corpus", 12.4), ("demo models", 190.0), ("13 stages", 941.6)])
    assert lines == [
        "demo phases (wall clock):",
        "  sample corpus              0:12",
        "  demo models                3:10",
        "  13 stages                 15:42",
        "  total                     19:04",
    ]
