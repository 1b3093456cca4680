"""The clean stage on the generated sample: planted duplicates, languages, spam, contamination, blocked sites
and PII (the demo's lists and PII settings)."""

from __future__ import annotations

import argparse
import hashlib
import io
import os
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

from jobs import clean, load_refs
from jobs.methods.decontam import benchmark_matcher
from jobs.runtime import EXIT_OK, UsageError, run_job
from schemas import bronze, ref, scores, silver
from udfs.analyze import COLUMNS, Analyze
from udfs.decontam import BenchmarkMatcher

DEMO = yaml.safe_load((Path(__file__).resolve().parents[1] / "conf" / "local.yaml").read_text())["clean"]


@pytest.fixture(scope="module")
def cleaned(ingested, tmp_path_factory):
    lh, truth, out, args = ingested
    data = yaml.safe_load(open(args.conf))
    data["refs"] = {"benchmarks": [{"path": str(out / "benchmarks" / "*.jsonl")}]}
    # The demo's blocklists (relative paths: from the repository root) and PII settings.
    root = Path(__file__).resolve().parents[1]
    lists = [{**x, "path": str(root / x["path"])} for x in DEMO["blocklist"]["lists"]]
    data["clean"] = {
        "allowed_langs": ["en"],
        "near_dedup": {"threshold": 0.8},
        "blocklist": {"lists": lists},
        "pii": DEMO["pii"],
    }
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
        ("scores.pii", True),
        ("scores.quality", True),
        ("silver.dedup_index", True),
        ("silver.documents", True),
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
        later = ("exact_dedup", "near_dedup", "decontamination", "pii")
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
    reached = kept | {d for d, r in filtered.items() if r["step"] in ("near_dedup", "decontamination", "pii")}
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
    # Planted to be dropped: pages on blocked sites, and pages with more PII than the demo keeps.
    planted = {ids[b["doc_id"]] for b in truth["blocked"]}
    planted |= {ids[s] for s, c in truth["pii"].items() if sum(c.values()) > DEMO["pii"]["max_total"]}
    prose = [
        ids[s]
        for s, d in truth["docs"].items()
        if d["category"] == "prose" and ids[s] not in dup_copies | planted
    ]
    dropped = Counter(filtered[d]["reason"] for d in prose if d in filtered)
    assert sum(d in kept for d in prose) / len(prose) >= 0.9, dropped


def test_contamination_found(cleaned):
    lh, truth, ids, kept, filtered, _ = cleaned
    planted = {ids[c["doc_id_source"]]: c for c in truth["contaminated"]}
    flagged = {d: r for d, r in filtered.items() if r["step"] == "decontamination"}
    assert set(flagged) <= set(planted)
    for doc, c in planted.items():
        assert doc not in kept
        if doc in flagged:
            assert flagged[doc]["reason"] == f"contamination:{c['benchmark']}"
            assert flagged[doc]["detail"].endswith(c["example_id"])
    assert flagged


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
        "  - blocklist            off",
        "  - normalize              0  -> 100 left",
        "  - language               0  -> 100 left",
        "  - rules                 55  -> 45 left",
        *[f"      {f'r{i}':<40} {10 - i:>7,}" for i in range(8)],
        f"      {'… 2 more reasons':<40} {3:>7,}",
        "  - exact_dedup            0  -> 45 left",
        "  - near_dedup           off",
        "  - decontamination      off",
        "  - pii                  off",
        "  kept in silver.documents: 45",
    ]


ENGLISH = (
    "The city library opened a new reading room on Monday, and the staff said that the space will be "
    "used for study groups, quiet reading and weekly talks. Visitors can borrow laptops at the front desk "
    "with a library card. The room has large windows, long tables and shelves of local history books. "
    "Officials hope that the new room will bring more students to the library during the exam season, "
    "and they plan to extend the opening hours in the spring if the demand stays high. A small cafe on the "
    "ground floor opens next week as well."
)


def test_analyze_steps_on_crafted_documents(spark):
    rules = [("gopher_quality", {}), ("c4_doc", {})]
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
    assert (got["e"]["drop_reason"], got["e"]["drop_value"]) == ("c4_doc:lorem_ipsum", 1.0)


def test_contamination_on_crafted_documents(spark):
    bench = spark.createDataFrame(
        [
            ("quiz", "q1", "What is the boiling point of water at sea level in degrees Celsius"),
            ("quiz", "q2", "Name the largest planet in the solar system"),
        ],
        "benchmark string, example_id string, text string",
    )
    docs = spark.createDataFrame(
        [
            ("x", "Trivia: what is the boiling point of water at sea level? Answer below."),
            ("y", "Nobody asked about the largest planet in the solar system today."),
            ("z", "An unrelated text about gardening and tomatoes in the spring."),
        ],
        "doc_id string, text string",
    )
    got = sorted(tuple(r) for r in docs.transform(clean.contamination(bench, ngram=6)).collect())
    # x shares the 10-word run "what is … sea level" (5 six-grams); y the 7-word "the largest … system" (2).
    assert got == [("x", "quiz", "q1", 5), ("y", "quiz", "q2", 2)]


def test_analyze_step_on_pandas():
    step = Analyze(["en"], 0.5, [("gopher_quality", {}), ("c4_doc", {})])
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
    assert col("drop_reason") == [None, "normalize:empty", "gopher_quality:word_count", "c4_doc:lorem_ipsum"]
    assert col("drop_value") == [None, 0.0, 6.0, 1.0]
    assert col("lang") == ["en", None, "en", "en"]
    assert col("norm_text")[1:3] == ["", "Too short to be a document."]
    assert col("rps_doc_word_count")[:2] == [len(ENGLISH.split()), None]


def test_benchmark_matcher_on_pandas():
    matcher = BenchmarkMatcher(6)
    matcher.add("quiz", "q1", "What is the boiling point of water at sea level in degrees Celsius")
    matcher.add("quiz", "q2", "Name the largest planet in the solar system")
    matcher.add("quiz", "q3", "the largest planet in the solar system is")  # its first 6-grams are q2's
    assert len(matcher.index) == 8 + 3 + 1
    docs = pd.DataFrame(
        {
            "doc_id": ["x", "y", "z"],
            "text": [
                "Trivia: what is the boiling point of water at sea level? Answer below.",
                "Nobody asked about the largest planet in the solar system today.",
                "An unrelated text about gardening and tomatoes in the spring.",
            ],
        }
    )
    assert matcher(docs).to_dict("list") == {
        "doc_id": ["x", "y"],
        "benchmark": ["quiz", "quiz"],
        "example_id": ["q1", "q2"],
        "hits": [5, 2],
    }
    assert matcher(docs.iloc[2:]).to_dict("list") == {
        "doc_id": [],
        "benchmark": [],
        "example_id": [],
        "hits": [],
    }


def test_benchmark_ngrams_past_the_bound_stop_the_stage(spark):
    bench = spark.createDataFrame(
        [("quiz", "q1", "What is the boiling point of water at sea level in degrees Celsius")],
        "benchmark string, example_id string, text string",
    )
    assert len(benchmark_matcher(bench, ngram=6, max_ngrams=8).index) == 8
    with pytest.raises(
        UsageError, match=r"^decontamination: ref.benchmarks holds more than 7 distinct 6-grams"
    ):
        benchmark_matcher(bench, ngram=6, max_ngrams=7)


# --------------------------------------------------------------------------------- blocklists and PII


def test_planted_blocked_sites_dropped_with_their_category(cleaned):
    lh, truth, ids, kept, filtered, summary = cleaned
    blocked = {d: r for d, r in filtered.items() if r["step"] == "blocklist"}
    assert {d: r["reason"] for d, r in blocked.items()} == {
        ids[b["doc_id"]]: f"blocklist:{b['category']}" for b in truth["blocked"]
    }
    assert len(blocked) == 7
    kinds = Counter(blocked[ids[b["doc_id"]]]["detail"].split(" ", 1)[0] for b in truth["blocked"])
    assert kinds == Counter({"domain": 5, "url": 2})  # "url x" and "url contains 'x'"
    # A page of a listed site outside the listed page tree is not blocked.
    negatives = [ids[d] for d in truth["blocklist_negatives"]]
    assert negatives and all(filtered.get(d, {"step": None})["step"] != "blocklist" for d in negatives)
    # Every list file is in the run's audit row with its size and sha256.
    from schemas import audit as audit_schemas

    (run,) = lh.read(audit_schemas.RUNS).filter("run_id = 'clean-1' and status = 'succeeded'").collect()
    recorded = sorted(e for e in run["inputs"] if e.startswith("blocklist:"))
    root = Path(__file__).resolve().parents[1] / "jobs" / "demo" / "data"
    files = sorted(
        [*root.glob("blocklist/*/domains"), *root.glob("blocklist/*/urls"), root / "url_substrings.txt"]
    )
    assert recorded == sorted(
        f"blocklist:{p}|{p.stat().st_size}|sha256:{hashlib.sha256(p.read_bytes()).hexdigest()}" for p in files
    )
    assert (
        "  blocklist: 4 files; adult 2 domains; affiliate 1 url substrings; gambling 2 domains; " in summary
    )


def test_planted_pii_counted_masked_and_dropped(cleaned):
    lh, truth, ids, kept, filtered, summary = cleaned
    pii = {r["doc_id"]: r for r in lh.read(scores.PII).collect()}
    # A row for every document the PII step saw: the kept ones and the ones it dropped.
    dropped = {d: r for d, r in filtered.items() if r["step"] == "pii"}
    assert set(pii) == kept | set(dropped)
    reached = {s: c for s, c in truth["pii"].items() if ids[s] in pii}
    assert len(reached) == len(truth["pii"]) == 4  # the rules kept every planted page
    for s, counts in reached.items():
        row = pii[ids[s]]
        assert {t: row[t] for t in counts} == counts, s
        assert row["total"] == sum(counts.values())
    # The staff directory (6 e-mails) is dropped as Dolma drops it; the others are masked in silver only.
    assert {d: (r["reason"], r["value"]) for d, r in dropped.items()} == {
        ids[s]: ("pii:total", 6.0) for s, c in truth["pii"].items() if sum(c.values()) > 5
    }
    docs = {r["doc_id"]: r["text"] for r in lh.read(silver.DOCUMENTS).collect()}
    raw = {r["doc_id"]: r["text"] for r in lh.read(bronze.DOCUMENTS).collect()}
    for s, counts in reached.items():
        d = ids[s]
        if d in docs:
            assert pii[d]["masked"] == sum(counts.values()) and not pii[d]["dropped"]
            assert docs[d].count("|||") == 2 * pii[d]["masked"]
            assert raw[d].count("@") >= counts["email"]  # bronze keeps the original
    # Outside the planted pages the sample's only PII is the boilerplate line "Contact us: info@<domain>"
    # (its "Call us on 0…" numbers are not North American). c4_lines removes that line (no terminal
    # punctuation) before the PII step, which judges the text silver carries: no match is left.
    planted = {ids[s] for s in truth["pii"]}
    others = {d: (r["email"], r["phone"], r["ipv4"], r["ipv6"]) for d, r in pii.items() if d not in planted}
    assert others == {d: (0, 0, 0, 0) for d in others}
    assert sum(raw[d].count("Contact us: info@") for d in others) > 0
    assert lh.read(scores.PII).filter("detector = 'regex' and clean_run_id = 'clean-1'").count() == len(pii)
