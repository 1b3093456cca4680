"""What the demo models learn from and are scored on: the sample's accepted documents and its benchmarks."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from jobs.demo.layout import CHAT_TASKS

_HELDOUT_MOD = 25  # a document is held out from LM training when hash(doc_id) % 25 == 0 (4%)
# The support of a reading-comprehension example is the passage the question asks about, so it belongs in
# the prompt; elsewhere the support is the worked answer and would give the answer away.
_PASSAGE_BENCHMARKS = frozenset({"reading_comp"})
_QUICK_BENCH_EXAMPLES = 8


@dataclass(frozen=True)
class CorpusDoc:
    doc_id: str
    text: str
    category: str
    topic: str
    heldout: bool


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data.split(b"\n")


def _records(path: Path) -> Iterator[tuple[int, object]]:
    """(1-based record number, parsed record) of a JSONL or Parquet file; unreadable lines are skipped."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
        return
    for rn, line in enumerate(_lines(path), start=1):
        try:
            yield rn, json.loads(line)
        except ValueError:  # malformed JSON or invalid UTF-8: the ingest stage rejects these too
            continue


def read_docs(sample: Path, truth: dict) -> list[CorpusDoc]:
    """Accepted documents of the JSONL and Parquet files, with category and topic from ``truth.json``.

    A record counts only where truth places the accepted document (same file and record number), so
    duplicate ids and planted rejects are skipped exactly like ingest skips them.
    """
    excluded = {c["doc_id_source"] for c in truth.get("contaminated", [])}
    topics = {name: d["topic"] for name, d in truth["domains"].items()}
    where = {(d["file"], d["record_number"]): doc_id for doc_id, d in truth["docs"].items()}
    files = sorted(p for p in (sample / "raw").iterdir() if ".jsonl" in p.name or p.name.endswith(".parquet"))
    docs = []
    for path in files:
        rel = f"raw/{path.name}"
        for rn, rec in _records(path):
            doc_id = where.get((rel, rn))
            if doc_id is None or doc_id in excluded or not isinstance(rec, dict):
                continue
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                continue
            meta = truth["docs"][doc_id]
            held = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % _HELDOUT_MOD == 0
            docs.append(CorpusDoc(doc_id, text, meta["category"], topics.get(meta["domain"], ""), held))
    return docs


@dataclass(frozen=True)
class MCItem:
    benchmark: str
    example_id: str
    context: str
    choices: tuple[str, ...]
    answer: int


def _math_choices(ex: dict) -> tuple[tuple[str, ...], int]:
    """The answer plus three distractors: numbers from the worked solution (stopping half-way is the
    usual mistake), then small offsets; order shuffled by the example id so it never depends on the build."""
    rng = random.Random(f"demo-models:{ex['id']}")
    ans = int(ex["answer"])
    nums = [int(n) for n in dict.fromkeys(re.findall(r"-?\d+", ex.get("support") or ""))]
    wrong = rng.sample([n for n in nums if n != ans], min(2, len([n for n in nums if n != ans])))
    for off in (1, -1, 2, 10, -2, -10, 3):
        if len(wrong) == 3:
            break
        if ans + off not in wrong and ans + off != ans:
            wrong.append(ans + off)
    choices = [str(ans), *(str(w) for w in wrong)]
    rng.shuffle(choices)
    return tuple(choices), choices.index(str(ans))


def mc_items(bench_dir: Path, *, quick: bool, splits: Sequence[str] | None = None) -> list[MCItem]:
    """The benchmark examples of ``splits`` (None: every split) as multiple-choice items (quick: the first
    few of each file). The demo measures its LMs' accuracies, the y of the perplexity correlations, on the
    target splits only: the evaluation split is never used to select."""
    items = []
    for path in sorted(bench_dir.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if splits is not None:
            rows = [ex for ex in rows if ex.get("split") in splits]
        if quick:
            rows = rows[:_QUICK_BENCH_EXAMPLES]
        for ex in rows:
            name = ex.get("benchmark") or path.stem
            if name in CHAT_TASKS:
                # Open-ended chat targets (RDS+'s instruction tasks): no choices, so no accuracy to measure.
                continue
            if ex.get("choices"):
                choices, answer = tuple(ex["choices"]), "ABCDEFGH".index(ex["answer"])
            else:
                choices, answer = _math_choices(ex)
            context = f"Question: {ex['question']}\nAnswer:"
            if name in _PASSAGE_BENCHMARKS and ex.get("support"):
                context = f"{ex['support']}\n\n{context}"
            items.append(MCItem(name, ex["id"], context, choices, answer))
    return items
