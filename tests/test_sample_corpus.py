"""Tests for the deterministic sample-corpus generator (pure Python, no Spark).

Every check re-reads the written files with the plain format libraries (json, gzip, zstandard,
pyarrow, warcio) instead of trusting the generator's own bookkeeping.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.archiveiterator import ArchiveIterator

from jobs.demo import sample_corpus
from jobs.demo.layout import N_CHAT_POOL
from jobs.demo.sample_corpus import (
    BENCHMARK_NAMES,
    CATEGORY_SHARES,
    CHAT_FILE,
    CHAT_TASKS,
    RAW_FILES,
    REJECT_REASONS,
    generate,
)
from udfs.chat import MalformedMessages, parse_messages, render_plain

SMALL = 600
N_CHAT = N_CHAT_POOL * len(CHAT_TASKS)  # the instruction pool's chat records: extra documents
WORD = re.compile(r"\w+")


# ---------------------------------------------------------------------------------------------
# Fixtures and independent readers
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sample") / "out"
    return out, generate(out, n_docs=SMALL, seed=0)


def _all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _jsonl_lines(path: Path) -> list[bytes]:
    """Raw record lines of a (possibly compressed) JSONL file; every record must end with a newline."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    assert data.endswith(b"\n")
    lines = data[:-1].split(b"\n")
    assert all(line.strip() for line in lines), "blank line inside a JSONL file"
    return lines


def _warc_records(path: Path) -> list:
    """(type, headers, body) of every record, in file order."""
    with path.open("rb") as fh:
        return [(r.rec_type, r.rec_headers, r.content_stream().read()) for r in ArchiveIterator(fh)]


def _read_raw(out: Path, max_doc_bytes: int = 200_000):
    """Classify every raw record like the ingest contract says; returns (docs, rejects, records_per_file).

    docs maps source id -> (file, record_number, text); rejects is a list of (file, record_number, reason).
    """
    docs: dict[str, tuple[str, int, str]] = {}
    rejects: list[tuple[str, int, str]] = []
    records: dict[str, int] = {}

    def add(file: str, rn: int, obj) -> None:
        if not isinstance(obj, dict):
            rejects.append((file, rn, "not_an_object"))
            return
        text = obj.get("text")
        if text is None and ("messages" in obj or "conversations" in obj):
            # A chat record: accepted when its list is a non-empty list of {role, content} strings.
            field = "messages" if "messages" in obj else "conversations"
            keys = ("role", "content") if field == "messages" else ("from", "value")
            msgs = obj[field]
            good = (
                isinstance(msgs, list)
                and msgs
                and all(
                    isinstance(m, dict) and all(isinstance(m.get(k), str) and m[k].strip() for k in keys)
                    for m in msgs
                )
            )
            if good:
                docs[obj["id"]] = (file, rn, render_plain(parse_messages(msgs, field)))
            else:
                rejects.append((file, rn, "malformed_messages"))
            return
        if text is None:
            reason = "missing_text"
        elif not isinstance(text, str):
            reason = "non_string_text"
        elif len(text.encode("utf-8")) > max_doc_bytes:
            reason = "too_large"
        elif not text.strip():
            reason = "empty_text"
        elif obj["id"] in docs:
            reason = "duplicate_doc_id"
        else:
            docs[obj["id"]] = (file, rn, text)
            return
        rejects.append((file, rn, reason))

    for file in RAW_FILES:  # file-name order decides which duplicate id wins
        path = out / file
        if file.endswith(".parquet"):
            rows = pq.read_table(path).to_pylist()
            records[file] = len(rows)
            for rn, row in enumerate(rows, start=1):
                add(file, rn, row)
        elif ".warc" in file:
            data = [r for r in _warc_records(path) if r[0] in ("conversion", "response")]
            records[file] = len(data)
            for rn, (kind, headers, body) in enumerate(data, start=1):
                if kind == "response":
                    body = body.split(b"\r\n\r\n", 1)[1] if body.startswith(b"HTTP/") else body
                try:
                    text = body.decode("utf-8")
                except UnicodeDecodeError:
                    rejects.append((file, rn, "invalid_utf8"))
                    continue
                add(file, rn, {"id": headers.get_header("WARC-Record-ID"), "text": text})
        else:
            lines = _jsonl_lines(path)
            records[file] = len(lines)
            for rn, line in enumerate(lines, start=1):
                try:
                    decoded = line.decode("utf-8")
                except UnicodeDecodeError:
                    rejects.append((file, rn, "invalid_utf8"))
                    continue
                try:
                    obj = json.loads(decoded)
                except json.JSONDecodeError:
                    rejects.append((file, rn, "malformed_json"))
                    continue
                add(file, rn, obj)
    return docs, rejects, records


@pytest.fixture(scope="module")
def small_raw(small):
    return _read_raw(small[0])


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    toks = WORD.findall(text.lower())
    return {tuple(toks[i : i + n]) for i in range(len(toks) - n + 1)}


def _jaccard(a: str, b: str) -> float:
    sa, sb = _shingles(a), _shingles(b)
    return len(sa & sb) / len(sa | sb)


def _collapse(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------------------------------
# Layout, determinism, API
# ---------------------------------------------------------------------------------------------


def test_writes_every_file(small):
    out, truth = small
    for f in RAW_FILES:
        assert (out / f).is_file() and (out / f).stat().st_size > 0, f
    for name in BENCHMARK_NAMES:
        assert (out / "benchmarks" / f"{name}.jsonl").is_file()
    assert json.loads((out / "truth.json").read_text(encoding="utf-8")) == truth
    assert set(truth["files"]) == set(RAW_FILES)


def test_same_seed_is_byte_identical_and_other_seed_differs(small, tmp_path):
    out, _ = small
    again = tmp_path / "again"
    generate(again, n_docs=SMALL, seed=0)
    first, second = _all_files(out), _all_files(again)
    assert first.keys() == second.keys()
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs with the same seed"

    other = tmp_path / "other"
    generate(other, n_docs=SMALL, seed=1)
    third = _all_files(other)
    for name in RAW_FILES:
        assert third[name] != first[name], f"{name} is the same for seed 0 and seed 1"


def test_regenerating_replaces_owned_files_only(tmp_path):
    out = tmp_path / "out"
    (out / "raw").mkdir(parents=True)
    (out / "raw" / "stale.jsonl").write_text("{}\n")
    (out / "notes.txt").write_text("keep me")
    generate(out, n_docs=200, seed=5)
    assert not (out / "raw" / "stale.jsonl").exists()
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.relative_to(out).as_posix() for p in (out / "raw").iterdir()) == sorted(RAW_FILES)


def test_rejects_too_small_corpus(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, n_docs=10)


def test_main_prints_summary(tmp_path, capsys):
    assert sample_corpus.main(["--out", str(tmp_path / "cli"), "--docs", "200", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    # 200 web pages and the instruction pool's 48 chat records
    assert f"accepted: {200 + N_CHAT}" in printed and "records:" in printed
    assert "instruction pool: 48 chat records over 4 task families, 3 malformed" in printed
    truth = json.loads((tmp_path / "cli" / "truth.json").read_text(encoding="utf-8"))
    assert truth["seed"] == 3 and truth["counts"]["expected_accepted"] == 200 + N_CHAT


# ---------------------------------------------------------------------------------------------
# Records, rejects and counts
# ---------------------------------------------------------------------------------------------


def test_every_reject_kind_is_planted_at_least_twice(small):
    _, truth = small
    seen = Counter(r["reason"] for r in truth["rejects"])
    for reason in REJECT_REASONS:
        assert seen[reason] >= 2, reason
    assert truth["counts"]["rejected_by_reason"] == {r: seen[r] for r in REJECT_REASONS}
    files = {r["file"] for r in truth["rejects"]}
    assert {
        "raw/web-000.jsonl",
        "raw/web-001.jsonl.gz",
        "raw/web-003.parquet",
        "raw/crawl-000.warc.wet.gz",
    } <= files


def test_counts_add_up_and_match_the_files(small, small_raw):
    _, truth = small
    _, _, records = small_raw
    counts = truth["counts"]
    assert counts["records_total"] == counts["expected_accepted"] + counts["expected_rejected"]
    assert counts["records_total"] == sum(records.values())
    assert counts["expected_accepted"] == len(truth["docs"]) == SMALL + N_CHAT
    assert counts["expected_rejected"] == len(truth["rejects"])
    for f in RAW_FILES:
        assert truth["files"][f]["records"] == records[f], f
        assert counts["by_file"][f]["records"] == records[f], f


def test_independent_reading_agrees_with_truth(small, small_raw):
    _, truth = small
    docs, rejects, _ = small_raw
    expected = sorted((r["file"], r["record_number"], r["reason"]) for r in truth["rejects"])
    assert sorted(rejects) == expected
    assert docs.keys() == truth["docs"].keys()
    for doc_id, (file, rn, _) in docs.items():
        t = truth["docs"][doc_id]
        assert (t["file"], t["record_number"]) == (file, rn), doc_id


def test_jsonl_records_have_the_stated_fields(small):
    out, truth = small
    with_hint = 0
    for line in _jsonl_lines(out / "raw/web-000.jsonl"):
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(obj, dict) and obj.get("id") in truth["docs"] and isinstance(obj.get("text"), str):
            assert {"id", "url", "text", "date", "source_tag"} <= obj.keys()
            assert re.fullmatch(r"web-000-\d{6}", obj["id"])
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", obj["date"])
            with_hint += "lang_hint" in obj
    assert with_hint > 0
    table = pq.read_table(out / "raw/web-003.parquet")
    assert set(table.column_names) >= {"id", "url", "text", "date", "source_tag", "lang_hint"}
    assert str(table.schema.field("text").type) == "string"


def test_warc_and_wet_structure(small):
    out, truth = small
    wet = _warc_records(out / "raw/crawl-000.warc.wet.gz")
    assert wet[0][0] == "warcinfo" and {r[0] for r in wet[1:]} == {"conversion"}
    for _, headers, _ in wet[1:]:
        for name in ("WARC-Target-URI", "WARC-Record-ID", "WARC-Date"):
            assert headers.get_header(name), name
        assert headers.get_header("Content-Type") == "text/plain"
        assert re.fullmatch(r"<urn:uuid:[0-9a-f-]{36}>", headers.get_header("WARC-Record-ID"))
    warc = _warc_records(out / "raw/crawl-001.warc.gz")
    assert Counter(r[0] for r in warc) == Counter(
        {"response": truth["files"][RAW_FILES[1]]["records"], "request": 1}
    )
    body = next(b for kind, _, b in warc if kind == "response").decode("utf-8")
    for tag in ("<html>", "<title>", "<style>", "<script>", "<p>", "</body></html>"):
        assert tag in body, tag


# ---------------------------------------------------------------------------------------------
# Planted duplicates and contamination
# ---------------------------------------------------------------------------------------------


def test_exact_duplicates(small, small_raw):
    _, truth = small
    docs = small_raw[0]
    pairs = truth["exact_duplicates"]
    assert len(pairs) >= 10
    for a, b in pairs:
        assert a != b
        assert _collapse(docs[a][2]) == _collapse(docs[b][2])
    identical = truth["exact_duplicates_byte_identical"]
    variants = truth["exact_duplicates_whitespace_variants"]
    assert identical and variants
    assert sorted(map(tuple, identical + variants)) == sorted(map(tuple, pairs))
    assert all(docs[a][2] == docs[b][2] for a, b in identical)
    assert all(docs[a][2] != docs[b][2] for a, b in variants)


def test_originals_precede_their_copies(small):
    _, truth = small

    def order(doc_id):
        d = truth["docs"][doc_id]
        return RAW_FILES.index(d["file"]), d["record_number"]

    for a, b in truth["exact_duplicates"] + truth["near_duplicates"]:
        assert order(a) < order(b), (a, b)


def test_near_duplicates_chains_and_negatives(small, small_raw):
    _, truth = small
    docs = small_raw[0]
    assert len(truth["near_duplicates"]) >= 10
    for a, b in truth["near_duplicates"]:
        assert 0.7 <= _jaccard(docs[a][2], docs[b][2]) <= 0.97, (a, b)
    assert truth["chains"]
    near = {tuple(p) for p in truth["near_duplicates"]}
    for a, b, c in truth["chains"]:
        assert (a, b) in near and (b, c) in near
        j_ac = _jaccard(docs[a][2], docs[c][2])
        assert j_ac < min(_jaccard(docs[a][2], docs[b][2]), _jaccard(docs[b][2], docs[c][2]))
    assert truth["boilerplate_negatives"]
    for a, b in truth["boilerplate_negatives"]:
        ta, tb = docs[a][2], docs[b][2]
        assert ta.split("\n")[0] == tb.split("\n")[0]  # the shared site header
        assert _jaccard(ta, tb) < 0.5


def test_no_unplanned_exact_duplicates(small, small_raw):
    _, truth = small
    docs = small_raw[0]
    groups: dict[str, list[str]] = {}
    for doc_id, (_, _, text) in docs.items():
        groups.setdefault(_collapse(text), []).append(doc_id)
    planted = {frozenset(p) for p in truth["exact_duplicates"]}
    for ids in groups.values():
        for i, a in enumerate(ids):
            for b in ids[i + 1 :]:
                # copies of one original are duplicates of each other too
                assert frozenset((a, b)) in planted or any(
                    frozenset((o, a)) in planted and frozenset((o, b)) in planted for o in ids
                ), (a, b)


def test_contamination(small, small_raw):
    out, truth = small
    docs = small_raw[0]
    examples = {}
    for name in BENCHMARK_NAMES:
        for line in (out / "benchmarks" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            ex = json.loads(line)
            examples[ex["id"]] = ex
    grams: dict[tuple[str, ...], set[str]] = {}
    for ex in examples.values():
        for g in _shingles(ex["question"], 13) | _shingles(ex["support"], 13):
            grams.setdefault(g, set()).add(ex["id"])
    # The chat targets (question and answer: load_refs' text of them) contaminate no document, web or chat.
    for name in CHAT_TASKS:
        for line in (out / "benchmarks" / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            ex = json.loads(line)
            for g in _shingles(f"{ex['question']}\n{ex['answer']}", 13):
                grams.setdefault(g, set()).add(ex["id"])

    planted = truth["contaminated"]
    assert {c["benchmark"] for c in planted} == set(BENCHMARK_NAMES)
    for c in planted:
        ex = examples[c["example_id"]]
        assert ex["benchmark"] == c["benchmark"]
        assert len(WORD.findall(c["snippet"])) >= 13
        assert c["snippet"] in ex[c["field"]]
        assert c["snippet"] in docs[c["doc_id_source"]][2]
    # A 13-gram decontaminator finds exactly the planted documents and examples.
    found = {}
    for doc_id, (_, _, text) in docs.items():
        hits = set().union(*(grams.get(g, set()) for g in _shingles(text, 13)))
        if hits:
            found[doc_id] = sorted(hits)
    assert found == {c["doc_id_source"]: c["overlapping_example_ids"] for c in planted}
    assert all(c["overlapping_example_ids"] == [c["example_id"]] for c in planted)


def test_benchmark_files(small):
    out, truth = small
    for name in BENCHMARK_NAMES:
        rows = [json.loads(x) for x in (out / "benchmarks" / f"{name}.jsonl").read_text("utf-8").splitlines()]
        assert 50 <= len(rows) <= 70
        assert len({r["id"] for r in rows}) == len(rows)
        # Target splits (train, dev) and the held-out test split, with no text on both sides.
        splits = Counter(r["split"] for r in rows)
        assert splits == {"train": 24, "dev": 12, "test": 24} == truth["benchmarks"][name]["splits"]
        fields = ("question", "choices", "answer", "support")  # the text load_refs makes of an example
        text = {r["id"]: " ".join(" ".join(str(r[f]) for f in fields).lower().split()) for r in rows}
        held = {text[r["id"]] for r in rows if r["split"] == "test"}
        assert not held & {text[r["id"]] for r in rows if r["split"] != "test"}
        if name == "mc_science":  # a question's three variants (other names and places) share a split
            stems = {}
            for r in rows:
                stems.setdefault(r["support"], set()).add(r["split"])
            assert all(len(s) == 1 for s in stems.values())
        for r in rows:
            assert set(r) == {"benchmark", "split", "id", "question", "choices", "answer", "support"}
            assert r["benchmark"] == name
            assert isinstance(r["question"], str) and isinstance(r["answer"], str) and r["support"]
            if name == "math_word":
                assert r["choices"] is None
                int(r["answer"])
            else:
                assert isinstance(r["choices"], list) and len(r["choices"]) == 4
                assert all(isinstance(c, str) for c in r["choices"])
                assert r["answer"] in "ABCD"
        if name == "reading_comp":
            assert min(len(r["support"].split()) for r in rows) >= 60


def test_instruction_pool_and_its_targets(small):
    out, truth = small
    pool = truth["instruct"]
    assert pool["file"] == CHAT_FILE and tuple(pool["families"]) == CHAT_TASKS
    assert pool["formats"] == {"messages": 32, "conversations": 16}
    records = [json.loads(line) for line in _jsonl_lines(out / CHAT_FILE)]
    assert len(records) == N_CHAT + 3 == truth["files"][CHAT_FILE]["records"]
    by_id = {r["id"]: (rn, r) for rn, r in enumerate(records, start=1)}
    for name, fam in pool["families"].items():
        assert len(fam["ids"]) == N_CHAT_POOL and fam["targets"] == f"benchmarks/{name}.jsonl"
        for rid in fam["ids"]:
            rn, rec = by_id[rid]
            assert rec["dataset"] == f"demo-{name}"
            assert truth["docs"][rid] == {
                "category": "chat",
                "lang": "en",
                "domain": None,
                "file": CHAT_FILE,
                "record_number": rn,
            }
    # The malformed records, with the detail udfs.chat gives; truth's rejects of the file are exactly them.
    assert len(pool["malformed"]) == 3
    for bad in pool["malformed"]:
        rn, rec = by_id[bad["id"]]
        field = "messages" if "messages" in rec else "conversations"
        with pytest.raises(MalformedMessages) as err:
            parse_messages(rec[field], field)
        assert (rn, str(err.value)) == (bad["record_number"], bad["detail"])
    assert sorted((r["record_number"], r["reason"]) for r in truth["rejects"] if r["file"] == CHAT_FILE) == [
        (b["record_number"], "malformed_messages") for b in pool["malformed"]
    ]
    # Targets: one benchmark-style file per family, split like the others, no text on both sides.
    for name in CHAT_TASKS:
        rows = [json.loads(x) for x in (out / "benchmarks" / f"{name}.jsonl").read_text("utf-8").splitlines()]
        assert Counter(r["split"] for r in rows) == {"train": 24, "dev": 12, "test": 24}
        assert truth["benchmarks"][name] == {
            "file": f"benchmarks/{name}.jsonl",
            "examples": 60,
            "splits": {"train": 24, "dev": 12, "test": 24},
        }
        for r in rows:
            assert set(r) == {"benchmark", "split", "id", "question", "choices", "answer", "support"}
            assert r["benchmark"] == name and r["choices"] is None and r["support"] is None
        text = {r["id"]: " ".join(f"{r['question']} {r['answer']}".lower().split()) for r in rows}
        held = {text[r["id"]] for r in rows if r["split"] == "test"}
        assert len(set(text.values())) == 60
        assert not held & {text[r["id"]] for r in rows if r["split"] != "test"}


def test_domains_and_urls(small):
    out, truth = small
    suffixes = Counter(".".join(d.split(".")[1:]) for d in truth["domains"])
    assert suffixes["co.uk"] and suffixes["com.au"]
    for line in _jsonl_lines(out / "raw/web-002.jsonl.zst"):
        obj = json.loads(line)
        if obj["id"] in truth["docs"]:
            host = re.match(r"https://([^/?]+)", obj["url"]).group(1)
            domain = truth["docs"][obj["id"]]["domain"]
            assert host == domain or host.endswith("." + domain)
            assert host in truth["domains"][domain]["hosts"]


# ---------------------------------------------------------------------------------------------
# The default-size corpus
# ---------------------------------------------------------------------------------------------


def test_default_size_corpus(tmp_path):
    truth = generate(tmp_path, seed=0)  # n_docs=5000
    for f in RAW_FILES:
        assert (tmp_path / f).is_file(), f
    counts = truth["counts"]
    assert counts["records_total"] >= 5000
    assert counts["expected_accepted"] == len(truth["docs"]) == 5000 + N_CHAT
    assert len({d["domain"] for d in truth["docs"].values()}) >= 50
    cats = Counter(d["category"] for d in truth["docs"].values())
    for cat, share in CATEGORY_SHARES.items():
        assert abs(cats[cat] / 5000 - share) <= 0.02, cat
    langs = Counter(d["lang"] for d in truth["docs"].values())
    assert {"en", "de", "fr", "es"} <= langs.keys()
    assert 120 <= len(truth["exact_duplicates"]) <= 180
    assert 120 <= len(truth["near_duplicates"]) <= 180
    # Most documents come from the JSONL files.
    jsonl = sum(counts["by_file"][f]["records"] for f in RAW_FILES if ".jsonl" in f)
    assert jsonl > counts["records_total"] / 2
    # Every domain's most common category is its declared dominant one.
    per_domain: dict[str, Counter] = {}
    for d in truth["docs"].values():
        if d["category"] != "chat":  # chat records have no URL, so no domain
            per_domain.setdefault(d["domain"], Counter())[d["category"]] += 1
    for domain, c in per_domain.items():
        assert c.most_common(1)[0][0] == truth["domains"][domain]["category"], domain
