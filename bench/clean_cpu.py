"""Per-document CPU cost of the clean stage's Python work, part by part, without Spark.

    python bench/clean_cpu.py [--docs 5000] [--out bench/out/clean_cpu] [--profile 25]

The bronze documents of the sample corpus (``--docs`` accepted documents, seed 0) are read in-process with
ingest's own readers (``udfs.readers.read_split``: the same texts bronze gets), then each part of what the
clean stage runs per document is timed with ``time.process_time`` (CPU time of this process, so a loaded
machine slows it far less than wall-clock time), over the documents that part sees in the stage:

  normalize     ``udfs.normalize.normalize``, every document
  langid        ``udfs.lang.identify``, every non-empty normalized document
  signals       ``udfs.quality.compute_signals`` (both signal sets) on the documents the language step
                keeps, split into the published Gopher/FineWeb signals (``published_signals``, spaCy-style
                tokens) and the rest
  c4_lines      ``udfs.c4.c4_lines`` on the same documents (its sentence count tokenizes each kept line)
  rules (all)   ``udfs.quality_rules.judge``: every rule, the signals computed on the text each rule reads
  analyze       ``udfs.analyze.Analyze.row``: steps 1–3 together, every document (what the clean UDF runs)
  pii           ``udfs.pii.Redactor.row`` with the demo's settings, on the documents the rules keep
  minhash       ``udfs.minhash.MinHasher.signature`` (128 permutations, 5-gram shingles), same documents

and printed as milliseconds of CPU per document. ``--profile N`` also prints the top N functions of a
cProfile of ``Analyze.row`` over every document. Times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))


def bronze_texts(raw: Path, max_doc_bytes: int = 200_000) -> list[str]:
    """The accepted documents' texts of the sample corpus's raw files, read as ingest reads them."""
    from udfs.splits import ReaderOptions, Split, detect_format

    opts = ReaderOptions(max_doc_bytes=max_doc_bytes, line_limit=4 * max_doc_bytes + (64 << 10))
    out = []
    for path in sorted(raw.iterdir()):
        split = Split("sample", str(path), detect_format(str(path)))
        from udfs.readers import read_split

        out += [r["text"] for r in read_split(split, opts) if r.get("kind") == "doc" and r.get("text")]
    return out


def _cpu(fn, items) -> tuple[float, list]:
    """(CPU seconds, results) of ``fn`` over ``items``."""
    t0 = time.process_time()
    res = [fn(x) for x in items]
    return time.process_time() - t0, res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "clean_cpu"))
    p.add_argument("--docs", type=int, default=5000, help="accepted documents of the sample corpus (>= 200)")
    p.add_argument("--profile", type=int, default=0, help="print the top N functions of Analyze.row")
    args = p.parse_args(argv)

    from jobs.config import CleanConf
    from jobs.demo import sample_corpus
    from udfs.analyze import Analyze
    from udfs.c4 import c4_lines
    from udfs.lang import UNKNOWN, identify
    from udfs.minhash import MinHasher
    from udfs.normalize import normalize
    from udfs.pii import Redactor, RegexDetector
    from udfs.quality import STOP_WORDS, compute_signals
    from udfs.quality_published import published_signals
    from udfs.quality_rules import applies, judge

    out = Path(args.out)
    corpus = out / f"sample-{args.docs}"
    truth = corpus / "truth.json"
    if not truth.exists() or json.loads(truth.read_text()).get("n_docs") != args.docs:
        sample_corpus.generate(corpus, n_docs=args.docs, seed=0, max_doc_bytes=200_000)
    texts = bronze_texts(corpus / "raw")
    c = CleanConf()
    rules = c.rule_params()
    c4_params = dict(rules)["c4_lines"]

    # Warm-up (model load, regex compilation, lru caches start empty in a fresh worker too: one doc only).
    Analyze(c.allowed_langs, c.min_lang_score, rules, c.unknown_lang).row(texts[0])

    rows: list[tuple[str, int, float]] = []
    t_norm, norms = _cpu(normalize, texts)
    rows.append(("normalize", len(texts), t_norm))
    nonempty = [t for t in norms if t]
    t_lang, langs = _cpu(identify, nonempty)
    rows.append(("langid", len(nonempty), t_lang))
    keep = [
        (t, g if s >= c.min_lang_score else UNKNOWN)
        for t, (g, s) in zip(nonempty, langs, strict=True)
        if s < c.min_lang_score or g in c.allowed_langs
    ]
    t_sig, _ = _cpu(lambda tl: compute_signals(tl[0], tl[1]), keep)
    t_pub, _ = _cpu(lambda tl: published_signals(tl[0], STOP_WORDS.get(tl[1], STOP_WORDS["en"])), keep)
    rows.append(("signals (all)", len(keep), t_sig))
    rows.append(("  published Gopher/FineWeb", len(keep), t_pub))
    rows.append(("  the others (RedPajama-style)", len(keep), t_sig - t_pub))
    t_c4, _ = _cpu(
        lambda tl: c4_lines(tl[0], c4_params, lambda ch, lang=tl[1]: applies("c4_lines", ch, lang)), keep
    )
    rows.append(("c4_lines", len(keep), t_c4))
    t_judge, verdicts = _cpu(lambda tl: judge(tl[0], rules, tl[1]), keep)
    rows.append(("rules (judge: all four)", len(keep), t_judge))
    step = Analyze(c.allowed_langs, c.min_lang_score, rules, c.unknown_lang)
    t_an, analyzed = _cpu(step.row, texts)
    rows.append(("analyze (steps 1-3, the UDF)", len(texts), t_an))
    passed = [v.text for v in verdicts if v.check is None]
    pii = c.pii  # the defaults, which the demo turns on
    redactor = Redactor(
        pii.rules(), pii.max_total, RegexDetector(list(pii.rules()), pii.phone_formats, pii.public_ips_only)
    )
    t_pii, _ = _cpu(redactor.row, passed)
    rows.append(("pii (Redactor.row, defaults)", len(passed), t_pii))
    n = c.near_dedup
    hasher = MinHasher(n.num_perm, n.ngram, n.seed)
    t_mh, _ = _cpu(hasher.signature, passed)
    rows.append(("minhash (signature)", len(passed), t_mh))

    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print(
        f"clean CPU per document, sample corpus {args.docs:,} docs "
        f"({len(texts):,} read, {n_bytes / 1e6:.1f} MB)"
    )
    print(f"  {'part':<32} {'docs':>6} {'CPU s':>8} {'ms/doc':>8}")
    for name, k, t in rows:
        print(f"  {name:<32} {k:>6,} {t:>8.2f} {1000 * t / max(k, 1):>8.3f}")
    kept = sum(1 for r in analyzed if r["drop_step"] is None)
    print(f"  analyze kept {kept:,} of {len(texts):,} documents")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for t in texts:
            step.row(t)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
