"""The clean stage on the generated sample: planted duplicates, languages, spam and contamination."""

from __future__ import annotations

import argparse
import io
from collections import Counter

import pytest
import yaml

from jobs import clean, load_refs
from jobs.runtime import EXIT_OK, run_job
from schemas import bronze, ref, scores, silver


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
    for step in silver.STEPS:
        if counts[step]:
            left -= counts[step]
            assert f"  - {step:<16} {counts[step]:>7,}  -> {left:,} left" in summary
    assert f"  kept in silver.documents: {len(kept):,}" in summary


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
