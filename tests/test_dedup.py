"""MinHash, LSH with its skew guard, connected components, and exact / near dedup end to end."""

from __future__ import annotations

import logging
import random
import re

import numpy as np
import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from jobs.methods.dedup import exact_duplicates, link_near, near_duplicates
from jobs.methods.dedup_components import connected_components, materialize
from jobs.methods.dedup_lsh import lsh_candidates, minhash_signatures, verify_pairs, verify_pairs_exact
from udfs.minhash import (
    EMPTY,
    MinHasher,
    PairJaccard,
    ShingleSet,
    estimated_jaccard,
    jaccard,
    shingle_hashes,
    shingles,
    tokens,
)

_RNG_VOCAB = random.Random(7)
# Random pseudo-words: unrelated documents built from them share no 5-gram.
VOCAB = sorted(
    {
        "".join(_RNG_VOCAB.choices("abcdefghijklmnopqrstuvwxyz", k=_RNG_VOCAB.randint(3, 9)))
        for _ in range(20000)
    }
)


def words(rng: random.Random, n: int) -> list[str]:
    return rng.choices(VOCAB, k=n)


def replace_run(rng: random.Random, ws: list[str], start: int, length: int) -> list[str]:
    """A copy of ``ws`` with ``length`` consecutive words from ``start`` replaced by fresh ones."""
    return ws[:start] + words(rng, length) + ws[start + length :]


def replace_scattered(rng: random.Random, ws: list[str], frac: float) -> list[str]:
    out = list(ws)
    for i in rng.sample(range(len(ws)), int(len(ws) * frac)):
        out[i] = rng.choice(VOCAB)
    return out


def text(ws: list[str]) -> str:
    return " ".join(ws)


# --- udfs.minhash ------------------------------------------------------------------------------


def test_tokens_and_shingles():
    assert tokens("Hello, World! it's 2024") == ["hello", "world", "it", "s", "2024"]
    assert shingle_hashes("").dtype == np.uint32 and shingle_hashes("").size == 0
    assert shingle_hashes("  ... ").size == 0
    # Fewer tokens than ngram: the whole token list is one shingle, independent of case and punctuation.
    assert shingle_hashes("Hello, world").size == 1
    assert np.array_equal(shingle_hashes("Hello, world"), shingle_hashes("hello world"))
    # Distinct shingles only: a repeated 5-gram counts once.
    assert shingle_hashes("a b c d e a b c d e").size == 5
    assert jaccard("", "") == 1.0 and jaccard("a b c d e", "") == 0.0
    assert jaccard("a b c d e f", "a b c d e g") == pytest.approx(1 / 3)


def test_minhasher_deterministic_across_instances():
    doc = text(words(random.Random(1), 200))
    one, two = MinHasher(128, 5, seed=42), MinHasher(128, 5, seed=42)
    sig = one.signature(doc)
    assert sig.dtype == np.uint32 and sig.shape == (128,)
    assert np.array_equal(sig, two.signature(doc))
    assert not np.array_equal(sig, MinHasher(128, 5, seed=43).signature(doc))
    # Values stay below p = 2**31 - 1, so their int32 view (what Spark stores) is the same number.
    assert sig.max() < 2**31 - 1
    batch = one.signature_batch(pd.Series([doc, None]))
    assert batch.iloc[0].dtype == np.int32 and np.array_equal(batch.iloc[0], sig.astype(np.int32))
    assert np.all(batch.iloc[1] == -1)


def test_minhasher_empty_and_short_texts():
    h = MinHasher(64)
    for empty in ("", "   ", "?!", None):
        sig = h.signature(empty)
        assert sig.shape == (64,) and np.all(sig == EMPTY)
    assert estimated_jaccard(h.signature("Hi there"), h.signature("hi, THERE!")) == 1.0
    assert estimated_jaccard(h.signature("hi there"), h.signature("hi there friend")) < 0.2


@pytest.mark.parametrize("ngram", [1, 3, 5])
def test_estimated_jaccard_close_to_exact(ngram):
    rng = random.Random(100 + ngram)
    hasher = MinHasher(num_perm=256, ngram=ngram, seed=42)
    base = words(rng, 300)
    seen = []
    for frac in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 1.0):
        other = replace_scattered(rng, base, frac)
        exact = jaccard(text(base), text(other), ngram)
        est = estimated_jaccard(hasher.signature(text(base)), hasher.signature(text(other)))
        assert abs(est - exact) < 0.1, (frac, exact, est)
        seen.append(exact)
    # The pairs cover the range, not only the easy ends.
    assert min(seen) < 0.2 and any(0.4 < j < 0.9 for j in seen)


def test_pair_jaccard_on_pandas():
    got = PairJaccard(5)(
        pd.Series(["a b c d e f", "", "Hello, world", "a b c d e"], index=[3, 4, 5, 6]),
        pd.Series(["a b c d e g", "", "hello world", "v w x y z"], index=[0, 1, 2, 3]),
    )
    assert got.dtype == np.float64 and got.tolist() == [1 / 3, 1.0, 1.0, 0.0]
    assert PairJaccard(2)(pd.Series(["a b c"]), pd.Series(["a b d"])).tolist() == [1 / 3]


# --- Spark transforms --------------------------------------------------------------------------


def test_minhash_signatures_udf_matches_python(spark):
    docs = [("a", "The quick brown fox jumps over the lazy dog"), ("b", ""), ("c", None)]
    source_df = spark.createDataFrame(docs, "doc_id string, text string").coalesce(1)
    actual = {r.doc_id: r.sig for r in source_df.transform(minhash_signatures(32, 5, 42)).collect()}
    hasher = MinHasher(32, 5, 42)
    assert actual["a"] == hasher.signature(docs[0][1]).astype(np.int64).tolist()
    assert actual["b"] == actual["c"] == [-1] * 32


def _sig_df(spark, rows):
    return spark.createDataFrame(rows, "doc_id string, sig array<int>").coalesce(2)


def test_lsh_candidates_pairs_from_shared_bands(spark):
    # bands=3, rows=2: a, b, f share band 0; b, f share band 1; a, c share band 1; c, d band 0; a, d band 2.
    sigs = _sig_df(
        spark,
        [
            ("a", [1, 2, 3, 4, 5, 6]),
            ("b", [1, 2, 9, 9, 8, 8]),
            ("c", [0, 0, 3, 4, 7, 7]),
            ("d", [0, 0, 1, 1, 5, 6]),
            ("e", [5, 5, 5, 5, 5, 5]),
            ("f", [1, 2, 9, 9, 0, 1]),
        ],
    )
    pairs, _ = lsh_candidates(bands=3, rows=2, max_bucket=10)(sigs)
    expected = {("a", "b"), ("a", "f"), ("b", "f"), ("a", "c"), ("c", "d"), ("a", "d")}
    got = [tuple(r) for r in pairs.collect()]
    assert sorted(got) == sorted(expected)  # distinct: (b, f) shares two bands but appears once

    # max_bucket=2: the band-0 bucket {a, b, f} becomes a star on a; (b, f) still comes from band 1.
    pairs, skew = lsh_candidates(bands=3, rows=2, max_bucket=2)(sigs)
    assert {tuple(r) for r in pairs.collect()} == expected
    assert [(r.band, r.size, r.action) for r in skew.collect()] == [(0, 3, "star")]


def test_lsh_skew_guard_links_a_huge_bucket_as_a_star(spark):
    n = 3000
    # Every doc has the same band 0 and its own band 1.
    sigs = spark.range(0, n, 1, numPartitions=2).select(
        F.format_string("d%05d", "id").alias("doc_id"),
        F.array(*[F.lit(7)] * 4, *[F.col("id").cast("int")] * 4).alias("sig"),
    )
    pairs, skew = lsh_candidates(bands=2, rows=4, max_bucket=100)(sigs)
    stats = pairs.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("b").alias("bs"),
        F.min("a").alias("lo"),
        F.max("a").alias("hi"),
    ).first()
    assert (stats.n, stats.bs, stats.lo, stats.hi) == (n - 1, n - 1, "d00000", "d00000")
    report = skew.collect()
    assert len(report) == 1
    assert (report[0].band, report[0].size, report[0].action) == (0, n, "star")


def test_lsh_rejects_short_signatures(spark):
    pairs, _ = lsh_candidates(bands=4, rows=2, max_bucket=10)(_sig_df(spark, [("a", [1, 2, 3])]))
    with pytest.raises(Exception, match="shorter than bands x rows"):
        pairs.collect()


def test_verify_pairs_keeps_pairs_at_threshold(spark):
    sigs = _sig_df(spark, [("a", [1, 2, 3, 4]), ("b", [1, 2, 3, 0]), ("c", [1, 0, 0, 0])])
    pairs = spark.createDataFrame([("a", "b"), ("a", "c"), ("b", "c")], "a string, b string")
    actual = verify_pairs(0.75)(pairs, sigs)
    assert [tuple(r) for r in actual.collect()] == [("a", "b", 0.75)]


def _rounds(caplog) -> int:
    found = [
        int(m.group(1)) for r in caplog.records if (m := re.search(r"after (\d+) rounds", r.getMessage()))
    ]
    return found[-1]


def test_connected_components_chains_cycles_and_a_long_path(spark, caplog):
    path = [f"p{i:02d}" for i in range(30)]
    random.Random(3).shuffle(path)  # the minimum sits mid-path, not at an end
    edges = [("A", "B"), ("C", "B"), ("D", "E"), ("F", "G"), ("G", "H"), ("H", "F"), ("E", "E")]
    edges += list(zip(path, path[1:], strict=False))
    source_df = spark.createDataFrame(edges, "a string, b string").coalesce(2)
    with caplog.at_level(logging.INFO, logger="jobs.methods.dedup_components"):
        actual_df = connected_components(source_df)
    expected = [
        ("A", "A"),
        ("B", "A"),
        ("C", "A"),
        ("D", "D"),
        ("E", "D"),
        ("F", "F"),
        ("G", "F"),
        ("H", "F"),
    ]
    expected += [(p, "p00") for p in path]
    expected_df = spark.createDataFrame(expected, "doc_id string, component string")
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    # Star contraction: far fewer rounds than the 29-edge path would take with label propagation.
    assert _rounds(caplog) <= 10

    with pytest.raises(RuntimeError, match="did not converge"):
        connected_components(source_df, max_iterations=1)


def test_connected_components_of_no_edges(spark):
    empty = spark.createDataFrame([], "a string, b string")
    assert connected_components(empty).count() == 0


def test_exact_duplicates_smallest_doc_id_survives(spark):
    source_df = spark.createDataFrame(
        [
            ("d3", "h1"),
            ("d1", "h1"),
            ("d2", "h1"),
            ("d5", "h2"),
            ("d4", "h2"),
            ("d6", "h3"),
            ("d7", None),
            ("d8", None),
        ],
        "doc_id string, text_hash string",
    )
    actual_df = source_df.transform(exact_duplicates("text_hash"))
    expected_df = spark.createDataFrame(
        [("d2", "d1"), ("d3", "d1"), ("d5", "d4")], "doc_id string, survivor_id string"
    )
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)


def test_near_duplicates_end_to_end(spark, caplog):
    rng = random.Random(11)
    base = words(rng, 400)
    # 5% of the words changed, in two edited passages (scattered single-word edits cost 5 shingles each,
    # so 5% of scattered edits would be a 5-gram Jaccard near 0.6, not a near duplicate at 0.8).
    copy = replace_run(rng, replace_run(rng, base, 60, 10), 300, 10)
    chain_a = words(rng, 400)
    chain_b = replace_run(rng, chain_a, 20, 26)
    chain_c = replace_run(rng, chain_b, 340, 26)
    docs = {
        "n10": text(base),
        "n03": text(copy),  # the edited copy has the smaller id, so it survives
        "n07": text(base).upper().replace(" ", "  "),  # same tokens as n10
        "k1": text(chain_a),
        "k2": text(chain_b),
        "k3": text(chain_c),
        "s00": "Hello world",
        "s01": "hello, WORLD!",
        "e00": "",
        "e01": " ... ",
    }
    for i in range(30):
        docs[f"u{i:02d}"] = text(words(rng, rng.randint(20, 300)))

    # The planted relations hold for the exact Jaccard and for the signatures Spark will compute.
    hasher = MinHasher(256, 5, 42)
    est = lambda x, y: estimated_jaccard(hasher.signature(docs[x]), hasher.signature(docs[y]))  # noqa: E731
    assert 0.85 < jaccard(docs["n10"], docs["n03"]) < 0.9
    assert min(jaccard(docs["k1"], docs["k2"]), jaccard(docs["k2"], docs["k3"])) > 0.85
    assert jaccard(docs["k1"], docs["k3"]) < 0.75
    assert min(est("k1", "k2"), est("k2", "k3"), est("n10", "n03")) >= 0.8 > est("k1", "k3")

    source_df = spark.createDataFrame(list(docs.items()), "doc_id string, text string").coalesce(2)
    with caplog.at_level(logging.INFO, logger="jobs.methods.dedup_components"):
        dups, skew = near_duplicates(num_perm=256, bands=32, rows=8, threshold=0.8, verify="estimate")(
            source_df
        )
        got = {r.doc_id: (r.survivor_id, r.jaccard) for r in dups.collect()}
    assert {d: s for d, (s, _) in got.items()} == {
        "n10": "n03",
        "n07": "n03",
        "k2": "k1",
        "k3": "k1",  # through k2: k1 and k3 are not near duplicates themselves
        "s01": "s00",
    }
    assert got["n10"][1] == got["n07"][1] == got["s01"][1] == 1.0
    assert got["k3"][1] == pytest.approx(est("k2", "k3"))
    assert all(j >= 0.8 for _, j in got.values())
    assert skew.count() == 0
    assert _rounds(caplog) <= 5

    # Exact verification (the default) finds the same clusters and reports the shingle-set Jaccard itself.
    exact, _ = near_duplicates(num_perm=256, bands=32, rows=8, threshold=0.8)(source_df)
    got_exact = {r.doc_id: (r.survivor_id, r.jaccard) for r in exact.collect()}
    assert {d: s for d, (s, _) in got_exact.items()} == {d: s for d, (s, _) in got.items()}
    assert got_exact["k3"][1] == pytest.approx(jaccard(docs["k2"], docs["k3"]))
    assert got_exact["n10"][1] == got_exact["s01"][1] == 1.0


def test_near_duplicates_rejects_bands_beyond_signature():
    with pytest.raises(ValueError, match="more than num_perm"):
        near_duplicates(num_perm=64, bands=16, rows=8)


# --- the scale fixes: big buckets in groups, shingle sets once per document, hubs, reliable checkpoints ---


def test_shingle_set_on_pandas():
    texts = pd.Series(["a b c d e a b c d e f", "", None, "Hello, world"], index=[7, 8, 9, 10])
    got = ShingleSet(5)(texts)
    assert got.index.tolist() == [7, 8, 9, 10]
    first = got.iloc[0]
    assert first.dtype == np.int64 and first.size == len(shingles(texts.iloc[0])) == 6
    assert np.array_equal(first, np.unique(first))  # sorted and distinct
    assert got.iloc[1].size == got.iloc[2].size == 0
    assert np.array_equal(got.iloc[3], ShingleSet(5)(pd.Series(["hello world"])).iloc[0])


def test_verify_pairs_exact_shingles_each_document_once_and_matches_pair_jaccard(spark):
    rng = random.Random(21)
    base = words(rng, 200)
    docs = {
        "a": text(base),
        "b": text(replace_run(rng, base, 50, 8)),
        "c": text(replace_run(rng, base, 120, 30)),
        "d": text(words(rng, 150)),
        "s1": "Hello world",
        "s2": "hello, WORLD!",
    }
    source = spark.createDataFrame(list(docs.items()), "doc_id string, text string").coalesce(2)
    pairs = spark.createDataFrame(
        [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d"), ("s1", "s2"), ("a", "missing")], "a string, b string"
    )
    got = {(r.a, r.b): r.jaccard for r in verify_pairs_exact(0.0, 5)(pairs, source).collect()}
    want = {p: jaccard(docs[p[0]], docs[p[1]]) for p in [("a", "b"), ("a", "c"), ("b", "c"), ("a", "d")]}
    want[("s1", "s2")] = 1.0
    assert got.keys() == want.keys()  # a pair with a document without text drops, as in an inner join
    assert all(got[p] == want[p] for p in want), (got, want)  # the same float, not only close
    kept = verify_pairs_exact(0.8, 5)(pairs, source).collect()
    assert sorted((r.a, r.b) for r in kept) == sorted(p for p, j in want.items() if j >= 0.8)


def _bucket_sigs(spark):
    """14 documents in one LSH bucket (bands=1, rows=2: the first two values). The other six values are a
    left and a right label: c_i and c_(i+1) share one of them (estimate 5/8), c_i and c_(i+2) neither
    (2/8), so the c's are one component only through the chain; the u's share nothing but the bucket."""
    rows = []
    for i in range(7):
        rows.append((f"c{i}", [7, 7, *[i // 2] * 3, *[100 + (i + 1) // 2] * 3]))
        rows.append((f"u{i}", [7, 7, *[1000 + i] * 3, *[2000 + i] * 3]))
    return _sig_df(spark, rows)


def test_a_bucket_bigger_than_the_pair_block_gives_all_its_pairs_and_the_same_components(spark):
    sigs = _bucket_sigs(spark)
    whole, _ = lsh_candidates(bands=1, rows=2, max_bucket=1000)(sigs)
    # pair_block=3: the 14 members are dealt into 5 blocks, 15 groups of pairs instead of one.
    split, skew = lsh_candidates(bands=1, rows=2, max_bucket=1000, pair_block=3)(sigs)
    whole_pairs = sorted(tuple(r) for r in whole.collect())
    assert len(whole_pairs) == 14 * 13 // 2
    assert sorted(tuple(r) for r in split.collect()) == whole_pairs  # each pair once, none missing
    assert skew.count() == 0

    def dups(pair_block):
        link = link_near(1, 2, 0.5, 1000, "estimate", pair_block=pair_block)
        found, _ = link(sigs)
        return {r.doc_id: (r.survivor_id, r.jaccard) for r in found.collect()}

    expected = {f"c{i}": ("c0", 5 / 8) for i in range(1, 7)}
    assert dups(1000) == expected
    assert dups(3) == expected
    assert dups(1) == expected  # one member per block: every group is one pair


def test_connected_components_of_hub_graphs_without_windows(spark, tmp_path):
    # A hub that is its component's minimum (what the rounds make of every cluster), a hub that is its
    # component's maximum (all its leaves smaller), linked through one leaf to a small chain.
    edges = [("h000", f"l{i:03d}") for i in range(300)]
    edges += [("zz", f"m{i:03d}") for i in range(300)]
    edges += [("m150", "b1"), ("b1", "b2")]
    source_df = spark.createDataFrame(edges, "a string, b string").repartition(3)
    checkpoint_dir = str(tmp_path / "ck")
    actual_df = connected_components(source_df, checkpoint_dir=checkpoint_dir)
    expected = [("h000", "h000")] + [(f"l{i:03d}", "h000") for i in range(300)]
    expected += [("zz", "b1"), ("b1", "b1"), ("b2", "b1")] + [(f"m{i:03d}", "b1") for i in range(300)]
    expected_df = spark.createDataFrame(expected, "doc_id string, component string")
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True)
    # Every round went to the given folder as Parquet (read back from files, not executor blocks).
    written = sorted(p.name for p in (tmp_path / "ck").iterdir())
    assert written and all(n.startswith("components-") for n in written)
    assert any(p.suffix == ".parquet" for p in (tmp_path / "ck" / written[0]).iterdir())

    from jobs.methods.dedup_components import _round

    plan = _round(source_df.select("a", "b"))._jdf.queryExecution().executedPlan().toString()
    assert "Window" not in plan and "Aggregate" in plan


def test_materialize_reads_back_from_the_folder(spark, tmp_path):
    df = spark.createDataFrame([("a", [1, 2], 0.5), ("b", [], None)], "k string, s array<int>, x double")
    back = materialize(df.filter("k = 'a'"), str(tmp_path / "m"), "rows")
    assert [tuple(r) for r in back.collect()] == [("a", [1, 2], 0.5)]
    assert back.columns == ["k", "s", "x"]
    empty = materialize(df.filter("k = 'z'"), str(tmp_path / "m"), "rows")
    assert empty.count() == 0 and empty.columns == ["k", "s", "x"]
    assert len(list((tmp_path / "m").iterdir())) == 2  # a folder per call
    # The plan starts from the files: nothing above them recomputes the filter.
    assert "FileScan parquet" in back._jdf.queryExecution().executedPlan().toString()


def test_near_duplicates_with_a_checkpoint_dir_finds_the_same(spark, tmp_path):
    rng = random.Random(4)
    base = words(rng, 300)
    docs = {"x1": text(base), "x0": text(replace_run(rng, base, 100, 6)), "y": text(words(rng, 300))}
    source_df = spark.createDataFrame(list(docs.items()), "doc_id string, text string")
    args = dict(num_perm=128, bands=16, rows=8, threshold=0.8)
    local, _ = near_duplicates(**args)(source_df)
    lake, _ = near_duplicates(**args, checkpoint_dir=str(tmp_path / "ck"))(source_df)
    want = {r.doc_id: (r.survivor_id, r.jaccard) for r in local.collect()}
    assert want == {"x1": ("x0", pytest.approx(jaccard(docs["x1"], docs["x0"])))}
    assert {r.doc_id: (r.survivor_id, r.jaccard) for r in lake.collect()} == want
    written = {p.name.split("-")[0] for p in (tmp_path / "ck").iterdir()}
    assert {"signatures", "edges", "components"} <= written
