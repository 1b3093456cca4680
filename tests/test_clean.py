"""The clean stage on the generated sample: planted duplicates, languages, spam and contamination."""

from __future__ import annotations

import argparse
import io
import json
import os
import re
from collections import Counter

import pandas as pd
import pytest
import yaml
from pyspark.sql import functions as F

from jobs import clean, load_refs
from jobs.runtime import EXIT_OK, run_job
from schemas import bronze, ref, scores, silver
from udfs.analyze import COLUMNS, Analyze


@pytest.fixture(scope="module")
def cleaned(ingested, tmp_path_factory):
    lh, truth, out, args = ingested
    data = yaml.safe_load(open(args.conf))
    data["refs"] = {"benchmarks": [{"path": str(out / "benchmarks" / "*.jsonl")}]}
    data["clean"] = {"allowed_langs": ["en"], "near_dedup": {"threshold": 0.8}}
    conf = tmp_path_factory.mktemp("clean") / "c.yaml"
    conf.write_text(yaml.safe_dump(data))
    cargs = argparse.Namespace(conf=str(conf), overrides=[], run_id="refs-1", verbose=False)
    assert run_job(load_refs.STAGE, cargs, load_refs.load_refs) == EXIT_OK
    cargs.run_id = "clean-1"
    out = io.StringIO()
    assert run_job(clean.STAGE, cargs, clean.clean, reads=clean.READS, out=out) == EXIT_OK
    ids = {
        r["source_id"]: r["doc_id"] for r in lh.read(bronze.DOCUMENTS).select("source_id", "doc_id").collect()
    }
    kept = {r["doc_id"] for r in lh.read(silver.DOCUMENTS).select("doc_id").collect()}
    filtered = {r["doc_id"]: r for r in lh.read(silver.FILTERED).collect()}
    return lh, truth, ids, kept, filtered, out.getvalue()


def test_reconciliation_and_gates(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    assert len(kept) + len(filtered) == truth["counts"]["expected_accepted"] == len(ids)
    assert not kept & set(filtered)
    assert lh.read(ref.BENCHMARKS).count() == sum(b["examples"] for b in truth["benchmarks"].values())
    quality = lh.read(scores.QUALITY)
    assert quality.filter("kept").count() == len(kept)
    from schemas import audit as audit_schemas

    gates = lh.read(audit_schemas.EXPECTATIONS).filter("run_id = 'clean-1'").collect()
    assert sorted((g["table_name"], g["success"]) for g in gates) == [
        ("scores.quality", True),
        ("silver.dedup_index", True),
        ("silver.documents", True),
        ("silver.excisions", True),
        ("silver.filtered", True),
    ]


def test_exact_duplicates_all_removed(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    groups = _clusters([(ids[a], ids[b]) for a, b in truth["exact_duplicates"]])
    members: dict[str, list[str]] = {}
    for a, b in truth["exact_duplicates"]:
        for d in (ids[a], ids[b]):
            members.setdefault(groups(d), [])
            if d not in members[groups(d)]:
                members[groups(d)].append(d)
    expected_exact = 0
    for docs in members.values():
        # Never two copies of a text in silver; copies that reached exact dedup point at the smallest doc_id.
        assert sum(d in kept for d in docs) <= 1, docs
        later = ("exact_dedup", "near_dedup", "decontamination")
        reached = sorted(d for d in docs if d in kept or filtered[d]["step"] in later)
        for d in reached[1:]:
            assert (filtered[d]["reason"], filtered[d]["survivor_id"]) == ("exact_duplicate", reached[0])
        expected_exact += max(0, len(reached) - 1)
    # The sample has no exact duplicates besides the planted ones.
    assert sum(r["step"] == "exact_dedup" for r in filtered.values()) == expected_exact > 0
    hashes = [r["text_hash"] for r in lh.read(silver.DOCUMENTS).select("text_hash").collect()]
    assert len(hashes) == len(set(hashes))


def _clusters(pairs):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    return find


def test_near_duplicates_precision_and_recall(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    true_pairs = [(ids[a], ids[b]) for a, b in truth["near_duplicates"]]
    true_pairs += [(ids[x], ids[y]) for a, b, c in truth["chains"] for x, y in ((a, b), (b, c))]
    same_true = _clusters(true_pairs)
    predicted = [(d, r["survivor_id"]) for d, r in filtered.items() if r["step"] == "near_dedup"]
    assert predicted, "no near duplicates found"
    precision = sum(same_true(d) == same_true(s) for d, s in predicted) / len(predicted)
    # Recall over planted pairs whose both documents reached the near-dedup step.
    reached = kept | {d for d, r in filtered.items() if r["step"] in ("near_dedup", "decontamination")}
    eligible = [(a, b) for a, b in true_pairs if a in reached and b in reached]
    pred_cluster = _clusters(predicted)
    recall = sum(pred_cluster(a) == pred_cluster(b) for a, b in eligible) / len(eligible)
    assert precision >= 0.95, precision
    assert recall >= 0.90, recall
    assert len(eligible) >= 0.8 * len(true_pairs)


def test_non_english_and_spam_filtered_with_reason(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    foreign = {sid: d for sid, d in truth["docs"].items() if d["lang"] != "en"}
    assert foreign
    reasons = Counter()
    for sid, d in foreign.items():
        doc = ids[sid]
        assert doc not in kept, sid
        reasons[filtered[doc]["reason"] == f"language:{d['lang']}"] += 1
    assert reasons[True] / len(foreign) >= 0.95, reasons
    spam = [ids[sid] for sid, d in truth["docs"].items() if d["category"] == "spam"]
    assert spam and not set(spam) & kept
    by_step = Counter(filtered[d]["step"] for d in spam)
    assert by_step["rules"] / len(spam) >= 0.9, by_step


def test_clean_prose_mostly_kept(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    dup_copies = {ids[b] for _, b in truth["exact_duplicates"]} | {
        ids[b] for _, b in truth["near_duplicates"]
    }
    prose = [
        ids[s] for s, d in truth["docs"].items() if d["category"] == "prose" and ids[s] not in dup_copies
    ]
    dropped = Counter(filtered[d]["reason"] for d in prose if d in filtered)
    assert sum(d in kept for d in prose) / len(prose) >= 0.9, dropped


def test_contamination_excised_as_betr_does(cleaned):
    """Planted question quotes are cut out of documents that stay; passage quotes stay (support: false)."""
    lh, truth, ids, kept, filtered, summary = cleaned
    reached = kept | {d for d, r in filtered.items() if r["step"] == "decontamination"}
    planted = {
        ids[c["doc_id_source"]]: c for c in truth["contaminated"] if ids[c["doc_id_source"]] in reached
    }
    questions = {d for d, c in planted.items() if c["field"] == "question"}
    passages = {d for d, c in planted.items() if c["field"] == "support"}
    assert questions and passages
    cuts = lh.read(silver.EXCISIONS).collect()
    by_doc: dict[str, list] = {}
    for r in cuts:
        by_doc.setdefault(r["doc_id"], []).append(r)
    # Exactly the documents quoting a question lost text, and kept the rest; nothing was dropped.
    assert set(by_doc) == questions and questions <= kept
    assert not any(r["step"] == "decontamination" for r in filtered.values())
    docs = {
        r["doc_id"]: r for r in lh.read(silver.DOCUMENTS).filter(F.col("doc_id").isin(*planted)).collect()
    }
    for d in questions:
        c = planted[d]
        (cut,) = by_doc[d]  # one quote: one span
        assert (cut["span"], cut["benchmark"], cut["example_id"]) == (1, c["benchmark"], c["example_id"])
        # Every benchmark of the sample has examples of 25+ words: its n-grams are 13 words long, and the
        # span holds every 13-gram of the quote.
        assert cut["matches"] == len(re.findall(r"\w+", c["snippet"])) - 12
        assert c["snippet"] in cut["text"] and c["snippet"] not in docs[d]["text"]
        assert docs[d]["contamination"] == c["benchmark"]
    for d in passages:
        assert d in kept and planted[d]["snippet"] in docs[d]["text"] and docs[d]["contamination"] is None
    spans, chars = len(cuts), sum(len(r["text"]) for r in cuts)
    assert (
        f"  decontamination excised {spans:,} spans ({chars:,} characters) from {len(questions):,} documents "
        "kept in silver (silver.excisions)"
    ) in summary


def test_funnel_printed_by_stage(cleaned):
    lh, truth, ids, kept, filtered, summary = cleaned
    counts = Counter(r["step"] for r in filtered.values())
    left = len(ids)
    assert f"  bronze documents read: {left:,}" in summary
    for step in silver.STEPS:  # every step is listed, those that dropped nothing too
        left -= counts[step]
        assert f"  - {step:<16} {counts[step]:>7,}  -> {left:,} left" in summary
    assert f"  kept in silver.documents: {len(kept):,}" in summary


def test_checkpoints_on_the_lake_removed_when_the_stage_ends(cleaned, lakehouse):
    lh = cleaned[0]
    # Near dedup materialized its rounds under <warehouse>/_checkpoints/clean-1; the stage removed them.
    assert not os.path.exists(os.path.join(lh.warehouse, "_checkpoints", "clean-1"))
    # However the block ends.
    with pytest.raises(RuntimeError, match="boom"), lakehouse.checkpoints("run/1") as folder:
        os.makedirs(os.path.join(folder, "edges-1"))
        assert folder == os.path.join(lakehouse.warehouse, "_checkpoints", "run_1")
        raise RuntimeError("boom")
    assert not os.path.exists(folder)


def test_funnel_lists_zero_and_off_steps_and_counts_reasons_past_eight():
    counts = [{"step": "rules", "reason": f"r{i}", "n": 10 - i} for i in range(10)]
    text = clean.funnel_text(100, counts, 45, {"normalize", "language", "rules", "exact_dedup"})
    assert text.splitlines() == [
        "  bronze documents read: 100",
        "  - normalize              0  -> 100 left",
        "  - language               0  -> 100 left",
        "  - rules                 55  -> 45 left",
        *[f"      {f'r{i}':<40} {10 - i:>7,}" for i in range(8)],
        f"      {'… 2 more reasons':<40} {3:>7,}",
        "  - exact_dedup            0  -> 45 left",
        "  - near_dedup           off",
        "  - decontamination      off",
        "  kept in silver.documents: 45",
    ]


ENGLISH = (
    "The city library opened a new reading room on Monday, and the staff said that the space will be "
    "used for study groups, quiet reading and weekly talks. Visitors can borrow laptops at the front desk "
    "with a library card. The room has large windows, long tables and shelves of local history books. "
    "Officials hope that the new room will bring more students to the library during the exam season, "
    "and they plan to extend the opening hours in the spring if the demand stays high."
)


def test_analyze_steps_on_crafted_documents(spark):
    rules = [("gopher_quality", {}), ("c4", {})]
    docs = spark.createDataFrame(
        [
            ("a", ENGLISH),
            ("b", "<p>&nbsp;</p>\u200b  "),
            ("c", "Der Hund läuft jeden Morgen mit seinem Besitzer durch den großen Park und die Stadt."),
            ("d", "Too short to be a document."),
            ("e", ENGLISH + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit."),
        ],
        "doc_id string, text string",
    ).coalesce(1)
    got = {r["doc_id"]: r for r in docs.transform(clean.analyze(["en"], 0.5, rules)).collect()}
    assert got["a"]["drop_step"] is None and got["a"]["lang"] == "en"
    assert got["a"]["rps_doc_word_count"] == len(ENGLISH.split())
    assert (got["b"]["drop_step"], got["b"]["drop_reason"], got["b"]["norm_text"]) == (
        "normalize",
        "normalize:empty",
        "",
    )
    assert (got["c"]["drop_step"], got["c"]["drop_reason"]) == ("language", "language:de")
    assert (got["d"]["drop_reason"], got["d"]["drop_value"]) == ("gopher_quality:word_count", 6.0)
    assert (got["e"]["drop_reason"], got["e"]["drop_value"]) == ("c4:lorem_ipsum", 1.0)


def test_analyze_step_on_pandas():
    step = Analyze(["en"], 0.5, [("gopher_quality", {}), ("c4", {})])
    docs = pd.DataFrame(
        {
            "doc_id": ["a", "b", "d", "e"],
            "text": [
                ENGLISH,
                "<p>&nbsp;</p>\u200b  ",
                "Too short to be a document.",
                ENGLISH + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.",
            ],
        },
        index=[7, 8, 9, 10],  # a batch's own index does not matter: rows line up by position
    )
    got = step(docs)
    assert list(got.columns) == ["doc_id", "text", *COLUMNS] and list(got.index) == [0, 1, 2, 3]
    # Missing values come out as pandas gives them (NaN); Arrow turns them into nulls.
    col = lambda name: [None if pd.isna(v) else v for v in got[name]]  # noqa: E731
    assert col("drop_step") == [None, "normalize", "rules", "rules"]
    assert col("drop_reason") == [None, "normalize:empty", "gopher_quality:word_count", "c4:lorem_ipsum"]
    assert col("drop_value") == [None, 0.0, 6.0, 1.0]
    assert col("lang") == ["en", None, "en", "en"]
    assert col("norm_text")[1:3] == ["", "Too short to be a document."]
    assert col("rps_doc_word_count")[:2] == [len(ENGLISH.split()), None]


# --------------------------------------------------------------------------------- languages

JAPANESE = (
    "東京の市立図書館は月曜日に新しい閲覧室を開きました。職員によると、この部屋は勉強会や静かな読書、毎週の講演会に使われるということです。\n"
    "来館者は図書館カードがあれば、受付でノートパソコンを借りることができます。部屋には大きな窓と長い机があり、地元の歴史の本が並んでいます。\n\n"
    "市の担当者は、試験の時期に多くの学生が図書館を利用することを期待しています。利用者が多ければ、春には開館時間を延ばす予定です。"
)
CHINESE = (
    "市立图书馆星期一开放了一个新的阅览室。工作人员说，这个空间将用于学习小组、安静阅读和每周的讲座。\n"
    "读者可以凭借书证在前台借用笔记本电脑。房间里有大窗户、长桌子和摆满地方历史书籍的书架。\n\n"
    "官员们希望新阅览室能在考试季吸引更多学生来到图书馆。如果需求保持旺盛，他们计划在春天延长开放时间。"
)
# Passes every rule, but py3langid's best guess (pcm, Nigerian Pidgin) scores 0.47: an unknown language.
NAMES = (
    "Anna, Bjorn, Carlos, Dmitri, Eun-ji, Fatima, Giulia, Hiroshi, Ines, Jakub, Kwame, Lars, Mei, Nadia, "
    "Oskar, Priya, Quentin, Rosa, Sven, Tariq, Ugo, Vera, Wen, Ximena, Yusuf and Zofia came to the party "
    "with the band of Omar, Pablo, Rania, Stefan and Tomas, to be with the old friends of the town, Kraków, "
    "Porto, Tampere, Lyon, Graz, Bergen, Split, Gent, Brno, Cluj, Riga and Tartu."
)
LANG_DOCS = [
    ("en", ENGLISH),
    ("ja", JAPANESE),
    ("zh", CHINESE),
    ("names", NAMES),
    ("ok", "ok ok ok ok"),  # unknown too (hu at 0.10), and too short: the rules say so
    ("de", "Der Hund läuft jeden Morgen mit seinem Besitzer durch den großen Park und die Stadt."),
]


def _analyzed(spark, *args) -> dict:
    docs = spark.createDataFrame(LANG_DOCS, "doc_id string, text string").coalesce(1)
    return {r["doc_id"]: r for r in docs.transform(clean.analyze(*args)).collect()}


def test_japanese_and_chinese_kept_when_allowed(spark):
    from jobs.config import CleanConf

    rules = CleanConf().rule_params()
    got = _analyzed(spark, ["en", "ja", "zh"], 0.5, rules)
    assert {d: (r["lang"], r["drop_reason"]) for d, r in got.items()} == {
        "en": ("en", None),
        "ja": ("ja", None),
        "zh": ("zh", None),
        "names": ("unknown", "language:unknown"),
        "ok": ("unknown", "gopher_quality:word_count"),
        "de": ("de", "language:de"),
    }
    assert Counter(r["drop_step"] for r in got.values()) == {None: 3, "language": 2, "rules": 1}
    assert got["names"]["lang_score"] == pytest.approx(0.4696, abs=1e-4)
    assert got["names"]["drop_detail"] == "best guess pcm at 0.470 < min_lang_score 0.5"
    # English only: Japanese and Chinese leave at the language step, as before.
    got = _analyzed(spark, ["en"], 0.5, rules)
    assert Counter(r["drop_reason"] for r in got.values()) == {
        None: 1,
        "language:ja": 1,
        "language:zh": 1,
        "language:unknown": 1,
        "gopher_quality:word_count": 1,
        "language:de": 1,
    }


def test_unknown_language_kept_on_request(spark):
    from jobs.config import CleanConf

    got = _analyzed(spark, ["en", "ja", "zh"], 0.5, CleanConf().rule_params(), "keep")
    kept = sorted((d, r["lang"]) for d, r in got.items() if r["drop_step"] is None)
    assert kept == [("en", "en"), ("ja", "ja"), ("names", "unknown"), ("zh", "zh")]
    assert got["ok"]["drop_reason"] == "gopher_quality:word_count"  # the rules still apply to unknown text
    # A threshold over every score makes every language unknown: only the rules decide.
    got = _analyzed(spark, ["en"], 1.0 + 1e-9, CleanConf().rule_params(), "keep")
    assert {r["lang"] for r in got.values()} == {"unknown"}
    assert sorted(d for d, r in got.items() if r["drop_step"] is None) == ["en", "names"]


def test_language_warning_names_the_skipped_checks():
    from jobs.config import CleanConf

    rules = CleanConf().rule_params()
    assert clean.language_warning(["en", "de"], rules) is None
    assert clean.language_warning(["en", "ja", "zh", "ko"], rules) == (
        "clean: rule checks that assume English text are skipped for these allowed languages:\n"
        "  ja, zh: gopher_quality word_count, word_count_max, mean_word_length, symbol_word_ratio, "
        "alpha_words, stop_words; gopher_repetition top_2gram, top_3gram, top_4gram, dup_5gram, dup_6gram, "
        "dup_7gram, dup_8gram, dup_9gram, dup_10gram; fineweb short_line_ratio, list_ratio\n"
        "  ko: gopher_quality stop_words"
    )


def test_clean_stage_with_other_languages(spark, tmp_path, caplog):
    """ingest → load_refs → clean on crafted documents: the startup warning, exact counts, the gates."""
    from jobs import cli, ingest
    from jobs.tables import EmbeddedLakehouse
    from tests.conftest import write_conf

    raw = tmp_path / "docs.jsonl"
    raw.write_text("".join(json.dumps({"id": d, "text": t}) + "\n" for d, t in LANG_DOCS))
    bench = tmp_path / "quiz_test.jsonl"
    bench.write_text('{"question": "What is the boiling point of water at sea level?"}\n')
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "crafted", "path": str(raw)}])
    data = yaml.safe_load(conf.read_text())
    data["refs"] = {"benchmarks": [{"path": str(bench)}]}
    data["clean"] = {"allowed_langs": ["en", "ja", "zh"], "unknown_lang": "keep"}
    conf.write_text(yaml.safe_dump(data))
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert run_job(load_refs.STAGE, args, load_refs.load_refs) == EXIT_OK
    assert cli.STAGES[clean.STAGE][2] is clean.preflight  # `corpuslake run` warns too
    out = io.StringIO()
    code = run_job(clean.STAGE, args, clean.clean, reads=clean.READS, out=out, preflight=clean.preflight)
    assert code == EXIT_OK
    warnings = [r.getMessage() for r in caplog.records if r.name == "corpuslake" and r.levelname == "WARNING"]
    assert len(warnings) == 1 and warnings[0].startswith("clean: rule checks that assume English text")
    assert "  ja, zh: gopher_quality word_count," in warnings[0]
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    langs = Counter(r["lang"] for r in lh.read(silver.DOCUMENTS).collect())
    assert langs == {"en": 1, "ja": 1, "zh": 1, "unknown": 1}
    reasons = Counter(r["reason"] for r in lh.read(silver.FILTERED).collect())
    assert reasons == {"language:de": 1, "gopher_quality:word_count": 1}
    assert "kept in silver.documents: 4" in out.getvalue()
