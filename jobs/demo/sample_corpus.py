"""Deterministic generator of a web-like sample corpus for the corpuslake pipeline.

The repository ships no data dump; instead this module synthesises, on demand, a small
corpus that looks like what a pretraining-data pipeline meets in the wild, together with
a ground-truth file (``truth.json``) that lets tests check every pipeline stage:

* ``raw/`` holds six web files in every format the ingest stage supports: plain,
  gzip and zstd JSONL, Parquet, a Common Crawl style WET file and a WARC file with
  HTML ``response`` records (plus one ``request`` record readers must skip); and a seventh,
  ``instruct-000.jsonl``, a small instruction pool (:mod:`~jobs.demo.instruct`): 48 chat examples of four
  task families in the messages format (a third ShareGPT-style ``conversations``), plus three malformed
  records that ingest rejects as ``malformed_messages``. Chat records are extra documents: ``n_docs``
  counts web pages only.
* Documents fall into realistic categories (clean prose, forum talk, code, maths,
  boilerplate, spam, non-English, very short) spread over more than fifty registered
  domains, each with its own topic vocabulary and one dominant category.
* Planted problems: malformed records of every reject reason the ingest stage knows,
  exact duplicates, near duplicates (including transitive chains), documents that only
  share a site header/footer (negatives for near-duplicate detection), benchmark
  examples copied verbatim into a few documents (contamination), pages on sites the demo's
  bundled blocklists block, and pages with e-mail addresses, phone numbers and IP addresses
  beside look-alikes (:mod:`~jobs.demo.planted`).
* ``benchmarks/`` holds three small evaluation sets (multiple-choice science, maths word
  problems, reading comprehension), used by the decontamination stage, as selection targets and as the
  evaluation split: each example's ``split`` is ``train``, ``dev`` or ``test`` (24 / 12 / 24 of 60;
  no text is in two splits, see :func:`jobs.demo.benchmarks.make_benchmarks`). Four more,
  ``chat_arithmetic``, ``chat_rewrite``, ``chat_summary`` and ``chat_code``, are the instruction pool's
  targets (same fields and splits; no choices or support), for RDS+ to select chat examples with.
* ``labels/prrc.jsonl`` holds labelled examples (``text``, ``professionalism``, ``readability``,
  ``reasoning``, ``cleanliness`` as integers 0-5, ``category``, ``variant``) for the demo PRRC raters
  that ``jobs.demo.models`` trains; the rules are in :func:`jobs.demo.prrc_labels.make_prrc_labels`.
  Their texts are made like the corpus's but from a separate random stream, and none equals a corpus
  document.

Everything is derived from ``seed`` through :class:`random.Random` instances seeded with
strings, so the same seed yields byte-identical files on every run and machine (gzip
headers carry ``mtime=0``; no wall-clock time is ever written).

Keys of ``truth.json`` (ids are source ids: the JSONL/Parquet ``id`` field, or the WARC-Record-ID):

* ``docs``: ``{id: {category, lang, domain, file, record_number}}`` for every record that must be
  accepted; ``record_number`` is 1-based (JSONL line, Parquet row, or WET/WARC data record counting
  only ``conversion``/``response`` records). Chat records have category ``chat``, lang ``en`` and no domain
  (instruction sets carry no URL).
* ``rejects``: ``[{file, record_number, reason}]`` for every record that must be rejected.
* ``counts``: ``records_total``, ``expected_accepted``, ``expected_rejected``, ``rejected_by_reason``,
  plus breakdowns ``by_file``, ``by_category``, ``by_lang`` and the number of ``domains``.
* ``exact_duplicates`` (``[original, copy]``, identical after collapsing whitespace), split into
  ``exact_duplicates_byte_identical`` and ``exact_duplicates_whitespace_variants``.
* ``near_duplicates`` (``[a, b]``, word 5-gram Jaccard about 0.8-0.93, values in
  ``near_duplicate_details``), ``chains`` (``[a, b, c]``: a~b and b~c, a and c less similar; see
  ``chain_details``) and ``boilerplate_negatives`` (same site header/footer, Jaccard < 0.5).
* ``contaminated``: ``[{doc_id_source, benchmark, example_id, field, snippet, overlapping_example_ids}]``.
* ``blocked``: ``[{doc_id, category, match}]``, the pages the demo's blocklists drop (``match``: ``domain``,
  ``url`` or ``url_substring``), and ``blocklist_negatives``: pages on a listed site that no list matches.
* ``pii``: ``{doc_id: {email, phone, ipv4, ipv6}}``, the matches a PII detector must count in each page
  that got a planted PII paragraph (look-alikes not counted).
* ``instruct``: the instruction pool: ``file``, ``families`` (``{benchmark: {ids, targets}}``: the pool's
  ids of that family and its target file), ``formats`` (``{messages, conversations}``: accepted records
  per layout) and ``malformed`` (``[{id, record_number, detail}]``, the ``malformed_messages`` rejects with
  the detail ingest gives).
* ``files``, ``benchmarks``, ``domains``, ``notes`` and the generation parameters.

Originals always come before their copies in file-name-then-record order, so a first-wins
deduplicator keeps the original.

The vocabularies and templates are data files in ``jobs/demo/data``; the code that fills them is split by
concern: :mod:`~jobs.demo.vocab` (templates), :mod:`~jobs.demo.categories` (one generator per document
category), :mod:`~jobs.demo.benchmarks`, :mod:`~jobs.demo.planner` (duplicates and contamination),
:mod:`~jobs.demo.writer` (file formats) and :mod:`~jobs.demo.prrc_labels`.

Run ``python -m jobs.demo.sample_corpus --out data/sample`` to (re)create the default sample.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path

from jobs.demo.benchmarks import SPLITS, make_benchmarks
from jobs.demo.instruct import make_instruct
from jobs.demo.layout import (
    BENCHMARK_NAMES,
    CATEGORY_SHARES,
    CHAT_FILE,
    CHAT_TASKS,
    GENERATOR_VERSION,
    MIN_DOCS,
    PQ,
    RAW_FILES,
    REJECT_REASONS,
    WARC,
    WET,
)
from jobs.demo.planner import Doc, Planner
from jobs.demo.planted import plant_blocked, plant_pii
from jobs.demo.prrc_labels import N_PRRC_LABELS, PRRC_DIMENSIONS, make_prrc_labels
from jobs.demo.vocab import DOMAINS
from jobs.demo.writer import Writer, doc_url, place_docs

__all__ = [
    "BENCHMARK_NAMES",
    "CATEGORY_SHARES",
    "CHAT_FILE",
    "CHAT_TASKS",
    "N_PRRC_LABELS",
    "PRRC_DIMENSIONS",
    "RAW_FILES",
    "REJECT_REASONS",
    "generate",
    "main",
]


def _clean(out: Path) -> None:
    """Remove only what this generator owns, never unrelated files in ``out``."""
    for sub in ("raw", "benchmarks", "labels"):
        if (out / sub).is_dir():
            shutil.rmtree(out / sub)
    (out / "truth.json").unlink(missing_ok=True)
    for sub in ("raw", "benchmarks", "labels"):
        (out / sub).mkdir(parents=True)


def generate(out_dir: str | Path, n_docs: int = 5000, seed: int = 0, max_doc_bytes: int = 200_000) -> dict:
    """Generate the sample corpus, benchmarks and ground truth under ``out_dir``.

    Existing ``raw/``, ``benchmarks/``, ``labels/`` and ``truth.json`` inside ``out_dir`` are replaced; other
    files there are left alone.  The same arguments always produce byte-identical files.

    Args:
        out_dir: Target directory (created if missing).
        n_docs: Number of web pages the ingest stage should accept (planted bad records and the
            instruction pool's chat records come on top).
            Must be at least 200 so every planted structure fits.
        seed: Seed for every random choice; different seeds give different corpora.
        max_doc_bytes: The ingest size limit; the ``too_large`` records exceed it by 50,000 bytes.

    Returns:
        The ground-truth dictionary, also written to ``out_dir/truth.json`` (see the module docstring
        and ``truth["notes"]`` for the meaning of each key).

    Raises:
        ValueError: If ``n_docs`` is below 200 or ``max_doc_bytes`` is not positive.
    """
    if n_docs < MIN_DOCS:
        raise ValueError(f"n_docs must be >= {MIN_DOCS}, got {n_docs}")
    if max_doc_bytes <= 0:
        raise ValueError("max_doc_bytes must be positive")
    out = Path(out_dir)
    _clean(out)
    benchmarks = make_benchmarks(seed)
    # The instruction pool and its targets: own random streams, independent of n_docs and of the web pages.
    chat_targets, chat_records = make_instruct(seed)
    for name, rows in {**benchmarks, **chat_targets}.items():
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out / "benchmarks" / f"{name}.jsonl").write_bytes(data.encode("utf-8"))

    rng = random.Random(f"corpuslake-sample:{seed}:corpus")
    planner = Planner(rng, n_docs, benchmarks)
    planner.build()
    per_file = place_docs(rng, planner.docs, planner.groups)
    for d in planner.docs:
        d.url = doc_url(d)
    # Own random streams: the corpus above and the files' placement do not depend on them.
    blocked = plant_blocked(seed, planner.docs)
    pii = plant_pii(seed, planner.docs)

    writer = Writer(out, seed, rng, max_doc_bytes)
    layouts = writer.plan_jsonl(per_file)
    writer.write_wet(per_file[WET])
    writer.write_warc(per_file[WARC])
    writer.write_jsonl(layouts, per_file)
    writer.write_parquet(per_file[PQ])
    writer.write_chat(chat_records)

    truth = _truth(planner, writer, {**benchmarks, **chat_targets}, n_docs, seed, max_doc_bytes, blocked, pii)
    data = json.dumps(truth, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    (out / "truth.json").write_bytes(data.encode("utf-8"))

    # Last, and from its own random stream, so the corpus files and truth.json do not depend on it.
    labels = make_prrc_labels(seed, {" ".join(d.text.split()) for d in planner.docs})
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labels)
    (out / "labels" / "prrc.jsonl").write_bytes(data.encode("utf-8"))
    return truth


def _truth(
    planner: Planner,
    writer: Writer,
    benchmarks: dict[str, list[dict]],
    n_docs: int,
    seed: int,
    max_doc_bytes: int,
    blocked: tuple = ([], [], []),
    pii: dict | None = None,
) -> dict:
    accepted = {id(d) for d in writer.accepted}

    def ok(*docs: Doc) -> bool:
        return all(id(d) in accepted for d in docs)

    rejects = sorted(writer.rejects, key=lambda r: (RAW_FILES.index(r["file"]), r["record_number"]))
    by_reason = {r: 0 for r in REJECT_REASONS}
    for r in rejects:
        by_reason[r["reason"]] += 1
    by_file = {}
    for f in RAW_FILES:
        rej = sum(1 for r in rejects if r["file"] == f)
        by_file[f] = {"records": writer.records[f], "accepted": writer.records[f] - rej, "rejected": rej}
    by_cat: dict[str, int] = {c: 0 for c in CATEGORY_SHARES}
    by_lang: dict[str, int] = {}
    for d in writer.accepted:
        by_cat[d.category] += 1
        by_lang[d.lang] = by_lang.get(d.lang, 0) + 1
    chat = writer.chat_docs
    by_cat["chat"] = len(chat)
    by_lang["en"] = by_lang.get("en", 0) + len(chat)
    records_total = sum(writer.records.values())
    docs = {
        d.doc_id: {
            "category": d.category,
            "lang": d.lang,
            "domain": d.dom.name,
            "file": d.file,
            "record_number": d.record_number,
        }
        for d in sorted(writer.accepted, key=lambda d: (RAW_FILES.index(d.file), d.record_number))
    }
    for c in chat:
        docs[c["id"]] = {
            "category": "chat",
            "lang": "en",
            "domain": None,
            "file": CHAT_FILE,
            "record_number": c["record_number"],
        }
    docs = dict(sorted(docs.items(), key=lambda kv: (RAW_FILES.index(kv[1]["file"]), kv[1]["record_number"])))
    exact = [(a, b, ident) for a, b, ident in planner.exact_pairs if ok(a, b)]
    near = [(a, b, j) for a, b, j in planner.near_pairs if ok(a, b)]
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_docs": n_docs,
        "max_doc_bytes": max_doc_bytes,
        "files": {f: {"records": writer.records[f]} for f in RAW_FILES},
        "benchmarks": {
            name: {
                "file": f"benchmarks/{name}.jsonl",
                "examples": len(rows),
                "splits": {s: sum(1 for r in rows if r["split"] == s) for s in SPLITS},
            }
            for name, rows in benchmarks.items()
        },
        "domains": {
            d.name: {"hosts": list(d.hosts), "topic": d.topic, "category": d.category, "lang": d.lang}
            for d in (*DOMAINS, *blocked[2])
        },
        "docs": docs,
        "rejects": rejects,
        "counts": {
            "records_total": records_total,
            "expected_accepted": len(writer.accepted) + len(chat),
            "expected_rejected": len(rejects),
            "rejected_by_reason": by_reason,
            "by_file": by_file,
            "by_category": by_cat,
            "by_lang": dict(sorted(by_lang.items())),
            "domains": len({d.dom.name for d in writer.accepted}),
        },
        "exact_duplicates": [[a.doc_id, b.doc_id] for a, b, _ in exact],
        "exact_duplicates_byte_identical": [[a.doc_id, b.doc_id] for a, b, ident in exact if ident],
        "exact_duplicates_whitespace_variants": [[a.doc_id, b.doc_id] for a, b, ident in exact if not ident],
        "near_duplicates": [[a.doc_id, b.doc_id] for a, b, _ in near],
        "near_duplicate_details": [{"a": a.doc_id, "b": b.doc_id, "jaccard": j} for a, b, j in near],
        "chains": [[a.doc_id, b.doc_id, c.doc_id] for a, b, c, _ in planner.chains if ok(a, b, c)],
        "chain_details": [
            {"chain": [a.doc_id, b.doc_id, c.doc_id], "jaccard_ac": round(j, 4)}
            for a, b, c, j in planner.chains
            if ok(a, b, c)
        ],
        "boilerplate_negatives": [[a.doc_id, b.doc_id] for a, b, _ in planner.negatives if ok(a, b)],
        "boilerplate_negative_details": [
            {"a": a.doc_id, "b": b.doc_id, "jaccard": round(j, 4)}
            for a, b, j in planner.negatives
            if ok(a, b)
        ],
        "contaminated": [
            {
                "doc_id_source": d.doc_id,
                "benchmark": b,
                "example_id": ex,
                "field": field,
                "snippet": snippet,
                "overlapping_example_ids": hits,
            }
            for d, b, ex, field, snippet, hits in planner.contaminated
            if ok(d)
        ],
        "blocked": [
            {"doc_id": d.doc_id, "category": category, "match": match}
            for d, category, match in blocked[0]
            if ok(d)
        ],
        "blocklist_negatives": [d.doc_id for d in blocked[1] if ok(d)],
        "pii": {d.doc_id: counts for d, counts in (pii or {}).values() if ok(d)},
        "instruct": {
            "file": CHAT_FILE,
            "families": {
                name: {
                    "ids": [c["id"] for c in chat if c["family"] == name],
                    "targets": f"benchmarks/{name}.jsonl",
                }
                for name in CHAT_TASKS
            },
            "formats": {f: sum(c["format"] == f for c in chat) for f in ("messages", "conversations")},
            "malformed": writer.chat_malformed,
        },
        "notes": {
            "record_number": "1-based ordinal within the file: JSONL line, Parquet row, or WET/WARC data "
            "record counting only conversion/response records",
            "doc_ids": "JSONL/Parquet: the id field; WET/WARC: the WARC-Record-ID header",
            "duplicate_doc_id": "first occurrence in file-name order, then record order, is accepted",
            "jaccard": "word 5-gram Jaccard over re.findall(r'\\w+', text.lower())",
            "exact_duplicates": "identical text after collapsing whitespace runs; [original_id, copy_id]",
            "contamination": "snippet (>= 15 words of the example's question, or of its passage for "
            "reading_comp) appears verbatim in the document; overlapping_example_ids lists "
            "every benchmark example whose question or support shares a word 13-gram with "
            "the document (by construction only example_id)",
            "warc_text": "crawl-001.warc.gz documents are HTML pages: the headline is the <title>, every "
            "other block of the document is one <p>; <style> and <script> hold no document text",
        },
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: generate the sample corpus and print a short summary.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        Process exit code (0 on success).
    """
    parser = argparse.ArgumentParser(description="Generate the deterministic corpuslake sample corpus.")
    parser.add_argument("--out", default="data/sample", help="output directory (default: data/sample)")
    parser.add_argument("--docs", type=int, default=5000, help="documents to be accepted (default: 5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--max-doc-bytes", type=int, default=200_000, help="ingest size limit in bytes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    truth = generate(args.out, n_docs=args.docs, seed=args.seed, max_doc_bytes=args.max_doc_bytes)
    counts = truth["counts"]
    print(f"wrote sample corpus to {args.out} in {time.perf_counter() - start:.1f}s")
    print(
        f"  records: {counts['records_total']}  accepted: {counts['expected_accepted']}  "
        f"rejected: {counts['expected_rejected']}  domains: {counts['domains']}"
    )
    chat = truth["instruct"]
    print(
        f"  instruction pool: {counts['by_category']['chat']} chat records over {len(chat['families'])} "
        f"task families, {len(chat['malformed'])} malformed"
    )
    print("  rejected by reason: " + ", ".join(f"{k}={v}" for k, v in counts["rejected_by_reason"].items()))
    print(
        f"  exact duplicates: {len(truth['exact_duplicates'])}  near duplicates: "
        f"{len(truth['near_duplicates'])}  contaminated docs: {len(truth['contaminated'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
