"""The HTML report: rendered once from the pipeline lakehouse, checked section by section against the tables.

A second lakehouse (bronze and audit copied from the pipeline's, plus one failed gate) checks the "not run
yet" lines and the failure highlighting; a headless-Chromium screenshot checks that the page really renders.
"""

from __future__ import annotations

import base64
import re
import shutil
import struct
import types
from datetime import datetime, timezone
from html.parser import HTMLParser

import pytest
from pyspark.sql import functions as F

from jobs import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Plots each section must carry on a lakehouse where every stage ran.
EXPECTED_IMAGES = {
    "summary": 0,
    "funnel": 1,
    "scores": 3,  # PRRC dimensions, bpb per model, max cosine per method
    "domains": 1,
    "rater-weights": 1,
    "selection": 1,
    "evaluation": 1,
    "gates": 0,
    "versions": 0,
}


class ReportParser(HTMLParser):
    """Sections in order, with their images, tables (rows of cell texts and row classes) and paragraphs."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[dict] = []
        self.stack: list[str] = []
        self._cell: list[str] | None = None
        self._row: dict | None = None
        self._table: dict | None = None
        self._p: dict | None = None
        self._h2: list[str] | None = None
        self._card: str | None = None

    @property
    def cur(self) -> dict | None:
        return self.sections[-1] if self.sections else None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.sections.append(
                {"id": a.get("id"), "attrs": a, "h2": "", "imgs": [], "tables": {}, "ps": [], "cards": {}}
            )
        elif tag == "h2" and self.cur is not None:
            self._h2 = []
        elif tag == "img" and self.cur is not None:
            self.cur["imgs"].append(a.get("src", ""))
        elif tag == "table" and self.cur is not None:
            self._table = {"attrs": a, "header": [], "rows": []}
            self.cur["tables"][a.get("data-query")] = self._table
        elif tag == "tr" and self._table is not None:
            self._row = {"class": a.get("class"), "cells": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "p" and self.cur is not None:
            self._p = {"attrs": a, "text": []}
        elif tag == "div" and "card" in (a.get("class") or "").split() and self.cur is not None:
            self._card = a.get("data-key")

    def handle_endtag(self, tag):
        if tag == "h2" and self._h2 is not None:
            self.cur["h2"] = "".join(self._h2)
            self._h2 = None
        elif tag in ("td", "th") and self._cell is not None:
            self._row["cells"].append(("th" if tag == "th" else "td", "".join(self._cell).strip()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if all(kind == "th" for kind, _ in self._row["cells"]) and not self._table["header"]:
                self._table["header"] = [t for _, t in self._row["cells"]]
            else:
                self._table["rows"].append(
                    {"class": self._row["class"], "cells": [t for _, t in self._row["cells"]]}
                )
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "p" and self._p is not None:
            self.cur["ps"].append({"attrs": self._p["attrs"], "text": "".join(self._p["text"]).strip()})
            self._p = None

    def handle_data(self, data):
        for buf in (self._h2, self._cell):
            if buf is not None:
                buf.append(data)
        if self._p is not None:
            self._p["text"].append(data)
        if self._card is not None and data.strip():
            # a card's first text is its value
            self.cur["cards"][self._card] = data.strip()
            self._card = None

    def section(self, sid: str) -> dict:
        return next(s for s in self.sections if s["id"] == sid)


def parse(html_text: str) -> ReportParser:
    p = ReportParser()
    p.feed(html_text)
    p.close()
    return p


def rows_of(table: dict) -> list[dict]:
    """A parsed table's rows as {column: text} dicts."""
    return [dict(zip(table["header"], r["cells"], strict=True)) for r in table["rows"]]


def num(text: str) -> float:
    return float(text.replace(",", ""))


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (no image library needed)."""
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def rendered(spark, pipeline, tmp_path_factory):
    from jobs.catalog import connect
    from jobs.config import load_conf

    conf = load_conf(pipeline.conf)
    spark, lh = connect(conf, spark)
    out = tmp_path_factory.mktemp("report") / "nested" / "dir" / "report.html"
    path = report.write_report(spark, lh, conf, out)
    text = path.read_text(encoding="utf-8")
    return types.SimpleNamespace(
        spark=spark, lh=lh, conf=conf, path=path, out=out, html=text, doc=parse(text)
    )


@pytest.fixture(scope="module")
def partial(rendered, pipeline, tmp_path_factory):
    """Only bronze (and the audit tables) of the pipeline lakehouse, plus one failed gate; its report.

    The report reads through the lakehouse it is given, so the SQL names stay registered to the pipeline's.
    """
    from jobs.config import load_conf
    from jobs.tables import open_lakehouse
    from schemas import audit

    base = tmp_path_factory.mktemp("partial")
    for layer in ("bronze", "audit"):
        shutil.copytree(pipeline.warehouse / layer, base / "wh" / layer)
    conf = load_conf(pipeline.conf, [f"storage.warehouse={base / 'wh'}"])
    spark = rendered.spark
    lh = open_lakehouse(spark, conf.storage.warehouse, conf.storage.engine)
    failed = {
        "run_id": "clean-failed-test",
        "stage": "clean",
        "table_name": "silver.documents",
        "suite": "silver.documents",
        "success": False,
        "evaluated": 18,
        "unsuccessful": 2,
        "observed_rows": 5,
        "results_json": "[]",
        "table_version": None,
        "validated_at": datetime(2030, 1, 1, tzinfo=timezone.utc),
    }
    lh.write(
        spark.createDataFrame([failed], audit.EXPECTATIONS.schema),
        audit.EXPECTATIONS,
        "append",
        run_id="clean-failed-test",
    )
    path = report.write_report(spark, lh, conf, base / "report.html")
    text = path.read_text(encoding="utf-8")
    expectations = lh.read(audit.EXPECTATIONS).count()
    return types.SimpleNamespace(path=path, html=text, doc=parse(text), expectations=expectations)


# ------------------------------------------------------------------------------------------ structure


def test_sections_in_order_with_titles(rendered):
    ids = [s["id"] for s in rendered.doc.sections]
    assert ids == list(report.SECTION_IDS)
    assert ids == [
        "summary",
        "funnel",
        "scores",
        "domains",
        "rater-weights",
        "selection",
        "evaluation",
        "gates",
        "versions",
    ]
    for s in rendered.doc.sections:
        assert s["h2"] == dict(report.SECTIONS)[s["id"]]
    assert rendered.path == rendered.out.resolve() and rendered.path.is_absolute()
    # written atomically: nothing but the report is left in its (created) folder
    assert [p.name for p in rendered.path.parent.iterdir()] == ["report.html"]
    assert "not run yet" not in rendered.html


def test_every_image_is_an_embedded_png(rendered):
    for s in rendered.doc.sections:
        assert len(s["imgs"]) == EXPECTED_IMAGES[s["id"]], s["id"]
        assert s["attrs"]["data-images"] == str(EXPECTED_IMAGES[s["id"]])
        for src in s["imgs"]:
            assert src.startswith("data:image/png;base64,")
            data = base64.b64decode(src.split(",", 1)[1], validate=True)
            w, h = png_size(data)
            assert 200 <= w <= 2000 and 100 <= h <= 2000, (s["id"], w, h)
    # modest: dpi 100 PNGs and capped tables keep the whole file small
    assert len(rendered.html) < 2_000_000


def test_nothing_external(rendered):
    html = rendered.html.lower()
    assert 'src="http' not in html and "src='http" not in html
    assert "<link" not in html
    assert "<script" not in html
    assert "@import" not in html and "url(" not in html
    srcs = re.findall(r'\bsrc="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert re.findall(r'\bhref="([^"]*)"', html) == [f"#{s}" for s in report.SECTION_IDS]


# ------------------------------------------------------------------------------------------ values


def test_summary_and_funnel_match_the_tables(rendered):
    from schemas import bronze, gold, silver

    lh = rendered.lh
    accepted = lh.read(bronze.DOCUMENTS).count()
    rejected = lh.read(bronze.REJECTS).count()
    kept = lh.read(silver.DOCUMENTS).count()
    filtered = lh.read(silver.FILTERED).count()
    selected = lh.read(gold.SELECTION).select("doc_id").distinct().count()

    funnel = rows_of(rendered.doc.section("funnel")["tables"]["funnel"])
    assert [r["step"] for r in funnel] == ["records read", "rejected", *silver.STEPS, *silver.LATER_STEPS]
    assert num(funnel[0]["remaining"]) == accepted + rejected
    assert num(funnel[1]["remaining"]) == accepted
    assert num(funnel[-1]["remaining"]) == kept
    assert sum(num(r["removed"]) for r in funnel[2:]) == filtered

    by_step = {r["step"]: r["count"] for r in lh.read(silver.FILTERED).groupBy("step").count().collect()}
    top = rows_of(rendered.doc.section("funnel")["tables"]["filter_reasons"])
    assert sum(num(r["docs"]) for r in top) <= filtered
    assert {r["step"] for r in top} <= set(by_step)

    cards = rendered.doc.section("summary")["cards"]
    assert num(cards["records read"]) == accepted + rejected
    assert num(cards["accepted into bronze"]) == accepted
    assert num(cards["kept in silver"]) == kept
    assert num(cards["selected (distinct docs)"]) == selected
    assert num(cards["gate failures"]) == 0
    summary = {
        r["cells"][0]: r["cells"][1] for r in rendered.doc.section("summary")["tables"]["summary"]["rows"]
    }
    assert summary["profile"] == rendered.conf.profile
    assert summary["warehouse"] == str(rendered.lh.warehouse)
    assert summary["engine"] == "embedded"


def test_scores_summary_matches_the_score_tables(rendered):
    from schemas import scores

    table = rows_of(rendered.doc.section("scores")["tables"]["score_summary"])
    got = {(r["table_name"], r["signal"], r["model"]): num(r["docs"]) for r in table}
    lh = rendered.lh
    ppl = lh.read(scores.PERPLEXITY).groupBy("model_id").count().collect()
    assert len(ppl) == 3
    for r in ppl:
        assert got[("scores.perplexity", "bpb", r["model_id"])] == r["count"]
    prrc = lh.read(scores.PRRC).groupBy("raters").count().collect()
    assert prrc
    for r in prrc:
        for d in scores.PRRC_DIMENSIONS:
            assert got[("scores.prrc", d, r["raters"])] == r["count"]
    sim = lh.read(scores.SIMILARITY).groupBy("method", "benchmark", "model_id").count().collect()
    assert sim
    for r in sim:
        assert got[("scores.similarity", f"{r['method']}:{r['benchmark']}", r["model_id"])] == r["count"]
    assert len(got) == len(ppl) + 4 * len(prrc) + len(sim) + 1  # + the entropy of scores.quality


def test_domains_and_rater_weights_match_gold(rendered):
    from schemas import gold

    lh = rendered.lh
    chosen = (
        lh.read(gold.DOMAIN_CORRELATIONS)
        .where("chosen")
        .orderBy(F.desc("weight"), "rank", "domain")
        .select("domain", "weight")
        .collect()
    )
    table = rendered.doc.section("domains")["tables"]["domain_weights"]
    assert int(table["attrs"]["data-rows"]) == len(chosen)
    shown = rows_of(table)
    assert len(shown) == min(len(chosen), 20)
    assert [r["domain"] for r in shown] == [r["domain"] for r in chosen[: len(shown)]]
    assert [num(r["weight"]) for r in shown] == pytest.approx(
        [r["weight"] for r in chosen[: len(shown)]], abs=1e-4
    )
    agree = rows_of(rendered.doc.section("domains")["tables"]["estimator_agreement"])
    assert len(agree) == 10  # the pairs of five estimators

    final = lh.read(gold.RATER_WEIGHTS).where("weights_id = 'final'").collect()
    rw = rows_of(rendered.doc.section("rater-weights")["tables"]["rater_weights"])
    assert {r["signal"]: num(r["weight"]) for r in rw} == pytest.approx(
        {r["signal"]: r["weight"] for r in final}, abs=1e-4
    )
    assert set(rendered.conf.aggregate.weights.signals) == {r["signal"] for r in rw}


def test_selection_totals_match_gold_selection(rendered):
    from schemas import gold

    sel = rendered.lh.read(gold.SELECTION)
    agg = sel.groupBy("strategy").agg(
        F.count("*").alias("docs"),
        F.sum("tokens").alias("tokens"),
        F.countDistinct(F.coalesce("domain", F.lit("(none)"))).alias("domains"),
    )
    expected = {r["strategy"]: (r["docs"], r["tokens"], r["domains"]) for r in agg.collect()}
    assert set(expected) == set(rendered.conf.select.strategies)
    totals = rows_of(rendered.doc.section("selection")["tables"]["selection_totals"])
    got = {r["strategy"]: (num(r["docs"]), num(r["tokens"]), num(r["domains"])) for r in totals}
    assert got == expected
    budget = rendered.conf.select.token_budget
    for r in totals:
        assert num(r["budget"]) == budget
        assert num(r["tokens"]) <= budget
    overlap = rows_of(rendered.doc.section("selection")["tables"]["selection_overlap"])
    for r in overlap:
        assert num(r["docs_a"]) == expected[r["strategy_a"]][0]
        assert num(r["docs_b"]) == expected[r["strategy_b"]][0]


def test_gates_and_versions_match_audit(rendered):
    from schemas import audit

    n = rendered.lh.read(audit.EXPECTATIONS).count()
    n_failed = rendered.lh.read(audit.EXPECTATIONS).where("not success").count()
    sec = rendered.doc.section("gates")
    count = next(p for p in sec["ps"] if "gate-count" in (p["attrs"].get("class") or ""))
    assert count["attrs"]["data-total"] == str(n)
    assert count["attrs"]["data-failed"] == str(n_failed) == "0"
    table = sec["tables"]["gate_results"]
    assert int(table["attrs"]["data-rows"]) == n
    assert not any(r["class"] == "failed" for r in table["rows"])

    events = rendered.lh.read(audit.RUNS)
    written = (
        events.where("status = 'succeeded'")
        .select(F.explode(F.map_keys("tables_written")).alias("t"))
        .distinct()
        .count()
    )
    assert written >= 17
    versions = rendered.doc.section("versions")["tables"]
    assert int(versions["table_versions"]["attrs"]["data-rows"]) == written
    runs = events.select("run_id").distinct().count()
    assert int(versions["runs"]["attrs"]["data-rows"]) == runs
    assert len(versions["runs"]["rows"]) == min(runs, report.MAX_ROWS)


# ------------------------------------------------------------------------------------------ partial lakehouse


def test_failed_gate_is_highlighted(partial):
    sec = partial.doc.section("gates")
    count = next(p for p in sec["ps"] if "gate-count" in (p["attrs"].get("class") or ""))
    assert count["attrs"]["data-failed"] == "1"
    assert count["attrs"]["data-total"] == str(partial.expectations)
    assert count["text"].startswith("1 failed of ")
    rows = sec["tables"]["gate_results"]["rows"]
    failed = [r for r in rows if r["class"] == "failed"]
    assert len(failed) == 1
    assert rows[0] is failed[0]  # failures first
    assert "clean-failed-test" in failed[0]["cells"] and "false" in failed[0]["cells"]
    assert 'class="failed"' in partial.html and "tr.failed" in partial.html  # styled
    assert num(partial.doc.section("summary")["cards"]["gate failures"]) == 1


def test_partial_lakehouse_says_what_to_run(partial):
    doc = partial.doc
    assert [s["id"] for s in doc.sections] == list(report.SECTION_IDS)

    def notes(sid):
        return [p["text"] for p in doc.section(sid)["ps"] if "notrun" in (p["attrs"].get("class") or "")]

    assert notes("funnel") == ["clean: not run yet: run corpuslake stage clean"]
    assert [n.split("run corpuslake stage ")[1] for n in notes("scores")] == [
        "score_prrc",
        "score_perplexity",
        "score_similarity",
    ]
    assert notes("domains") == ["not run yet: run corpuslake stage aggregate_domains"]
    assert notes("rater-weights") == ["not run yet: run corpuslake stage aggregate_weights"]
    assert notes("selection") == ["not run yet: run corpuslake stage select"]
    assert notes("evaluation") == ["not run yet: run corpuslake stage evaluate"]
    # bronze is there: the funnel shows the ingest rows and its plot
    funnel = rows_of(doc.section("funnel")["tables"]["funnel"])
    assert [r["step"] for r in funnel] == ["records read", "rejected"]
    assert [len(s["imgs"]) for s in doc.sections] == [0, 1, 0, 0, 0, 0, 0, 0, 0]
    assert doc.section("summary")["cards"]["kept in silver"] == "—"


# ------------------------------------------------------------------------------------------ small pieces


def test_values_are_escaped():
    import pandas as pd

    out = report.table_html(pd.DataFrame({"a": ["<script>alert(1)</script>", 'x" onmouseover="y']}), "t<")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "x&quot; onmouseover=&quot;y" in out
    assert 'data-query="t&lt;"' in out


def test_long_tables_are_capped():
    import pandas as pd

    out = report.table_html(pd.DataFrame({"n": range(45)}), "t", max_rows=30)
    assert out.count("<tr>") == 31  # header + 30 rows
    assert "… 15 more rows" in out


def test_bad_conf_is_one_line_exit_2(tmp_path, capsys):
    assert report.main(["--conf", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "r.html").exists()


def test_screenshot_renders(rendered, tmp_path):
    import matplotlib.image as mpimg
    import numpy as np

    if report.find_chromium() is None:
        pytest.skip("no chromium: install the Debian package (make chromium)")
    png = report.screenshot(rendered.path, tmp_path / "shots" / "report.png", width=1200, height=1600)
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert png_size(data) == (1200, 1600)
    pixels = mpimg.imread(png)
    colors = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colors) > 50  # text, tables and a plot, not a blank page
    assert not list(png.parent.glob(".*tmp*"))


def test_screenshot_without_chromium(rendered, tmp_path, monkeypatch):
    monkeypatch.setattr(report.chromium, "CHROMIUM_NAMES", ("no-such-browser-xyz",))
    monkeypatch.delenv("CORPUSLAKE_CHROMIUM", raising=False)
    with pytest.raises(RuntimeError, match="install the Debian package"):
        report.screenshot(rendered.path, tmp_path / "x.png")
