"""The tokenized export (``export.format: tokens``): Megatron .bin/.idx shards read back with a reader written
here from the format's spec, decoded to the exported texts, token counts against the tokenizer itself."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import struct
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest

from jobs import export
from jobs.runtime import EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, silver
from tests.conftest import silver_row, write_conf
from udfs.tokens import IndexedShardWriter, token_dtype

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_models  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
EOS = "<|endoftext|>"
WORDS = [
    "data",
    "model",
    "token",
    "café",
    "naïve",
    "日本語",
    "corpus",
    "shard",
    "ünï",
    "🙂",
    "x\ty",
    "line\n",
]
SHARD_TOKENS = 400


# ----------------------------------------------------------------- a reader written from the format's spec


def read_indexed(prefix: Path) -> dict:
    """One Megatron indexed dataset: ``.idx`` = magic, version <Q, dtype code <B, sequence count <Q,
    document count <Q, int32 lengths, int64 byte pointers, int64 document indices; ``.bin`` = the tokens."""
    idx = Path(f"{prefix}.idx").read_bytes()
    version, code, n_seq, n_doc = struct.unpack_from("<QBQQ", idx, 9)
    off = 9 + 8 + 1 + 8 + 8
    lengths = np.frombuffer(idx, np.int32, n_seq, off)
    pointers = np.frombuffer(idx, np.int64, n_seq, off + 4 * n_seq)
    doc_index = np.frombuffer(idx, np.int64, n_doc, off + 12 * n_seq)
    dtype = {8: np.dtype("<u2"), 4: np.dtype("<i4")}[code]
    data = Path(f"{prefix}.bin").read_bytes()
    seqs = [np.frombuffer(data, dtype, n, p) for n, p in zip(lengths, pointers, strict=True)]
    return {
        "magic": idx[:9],
        "version": version,
        "code": code,
        "tail": len(idx) - (off + 12 * n_seq + 8 * n_doc),  # bytes after the document indices
        "lengths": lengths,
        "pointers": pointers,
        "doc_index": doc_index,
        "bin_bytes": len(data),
        "seqs": seqs,
    }


def test_indexed_writer_on_pandas_int32(tmp_path):
    """Above 65,500 tokens the ids are int32 (Megatron's rule); shards span batches; the layout is exact."""
    assert token_dtype(65499) == "uint16" and token_dtype(65500) == "int32"
    docs = [[70000, 1, 0], [5], [65535, 2**31 - 1, 7, 0]]
    rows = pd.DataFrame({"shard": [0, 0, 1], "rank": [1, 2, 3], "ids": [np.array(d, np.int32) for d in docs]})
    out = list(
        IndexedShardWriter(pafs.LocalFileSystem(), str(tmp_path), "int32")([rows[:1], rows[:0], rows[1:]])
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "part-00000.bin",
        "part-00000.idx",
        "part-00001.bin",
        "part-00001.idx",
    ]
    first = read_indexed(tmp_path / "part-00000")
    assert first["magic"] == b"MMIDIDX\x00\x00" and first["version"] == 1 and first["code"] == 4
    assert first["tail"] == 0 and first["bin_bytes"] == 4 * 4
    assert first["lengths"].tolist() == [3, 1] and first["pointers"].tolist() == [0, 12]
    assert first["doc_index"].tolist() == [0, 1, 2]
    assert [s.tolist() for s in first["seqs"]] == docs[:2]
    assert [s.tolist() for s in read_indexed(tmp_path / "part-00001")["seqs"]] == docs[2:]
    meta = out[0].to_dict("records")
    assert [(m["name"], m["docs"], m["tokens"], m["first_rank"], m["last_rank"]) for m in meta] == [
        ("part-00000", 2, 4, 1, 2),
        ("part-00001", 1, 4, 3, 3),
    ]
    for m in meta:
        raw_bin = (tmp_path / f"{m['name']}.bin").read_bytes()
        raw_idx = (tmp_path / f"{m['name']}.idx").read_bytes()
        assert (m["bin_bytes"], m["bin_sha256"]) == (len(raw_bin), hashlib.sha256(raw_bin).hexdigest())
        assert (m["idx_bytes"], m["idx_sha256"]) == (len(raw_idx), hashlib.sha256(raw_idx).hexdigest())


# ----------------------------------------------------------------------------------------- the stage


def _docs(n: int = 36, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 120)))
        text = ("  " + text + " ") if i % 5 == 0 else text  # leading and trailing spaces survive
        out.append(
            silver_row(f"d{i:03d}", text, url=f"https://x/{i}", domain=["a.com", "b.org", None][i % 3])
        )
    return out


@pytest.fixture(scope="module")
def tok_lake(spark, tmp_path_factory):
    """silver.documents, a gold.selection of one strategy (every other document, shuffled ranks), a tiny
    byte-level BPE tokenizer in a folder, and ``conf(**export)`` that writes a profile."""
    tmp = tmp_path_factory.mktemp("tokens")
    lh = EmbeddedLakehouse(spark, str(tmp / "wh"))
    docs = _docs()
    lh.write(spark.createDataFrame(docs, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite", run_id="c0")
    versions = json.dumps({"silver.documents": lh.version(silver.DOCUMENTS), "gold.doc_scores": 3})
    picked = [d for d in docs if int(d["doc_id"][1:]) % 2 == 0]
    random.Random(1).shuffle(picked)
    cum, rows = 0, []
    for rank, d in enumerate(picked, 1):
        cum += d["n_tokens_est"]
        rows.append(
            {
                "run_id": "sel-0",
                "strategy": "betr",
                "doc_id": d["doc_id"],
                "rank": rank,
                "score": 1.0 / rank,
                "domain": d["domain"],
                "tokens": d["n_tokens_est"],
                "cum_tokens": cum,
                "selected_at": NOW,
                "table_versions": versions,
            }
        )
    lh.write(spark.createDataFrame(rows, gold.SELECTION.schema), gold.SELECTION, "overwrite", run_id="sel-0")
    tok_dir = tmp / "tokenizer"
    tiny_models.bpe_tokenizer([d["text"] for d in docs], vocab_size=300).save_pretrained(tok_dir)

    def conf(**section) -> argparse.Namespace:
        path = tmp / f"c{len(list(tmp.glob('c*.yaml')))}.yaml"
        write_conf(path, tmp / "wh", [{"name": "x", "path": str(tmp / "none")}], {"export": section})
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return SimpleNamespace(
        lh=lh, docs=docs, picked=picked, versions=versions, tmp=tmp, tok_dir=tok_dir, conf=conf
    )


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(export.STAGE, args, export.export, export.READS, out=out, preflight=export.preflight)
    return code, out.getvalue()


def test_tokens_round_trip_counts_and_shards(tok_lake):
    from transformers import AutoTokenizer

    t = tok_lake
    tokens_conf = {"tokenizer": str(t.tok_dir), "shard_tokens": SHARD_TOKENS}
    code, out = _run(t.conf(format=["jsonl.gz", "tokens"], shard_mb=1, tokens=tokens_conf))
    assert code == EXIT_OK, out
    root = t.tmp / "export"
    assert sorted(p.name for p in root.iterdir()) == ["betr", "tokens"]  # no temporary folders left
    folder = root / "tokens" / "betr"
    man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    names = [s["name"] for s in man["shards"]]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["manifest.json", *(f"{n}{ext}" for n in names for ext in (".bin", ".idx"))]
    )
    assert names == [f"part-{i:05d}" for i in range(len(names))] and len(names) >= 3

    # Decoded back: exactly the JSONL export's texts, in rank order, each followed by one EOS.
    exported = []
    for f in sorted((root / "betr").glob("part-*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            exported += [json.loads(line)["text"] for line in fh]
    tok = AutoTokenizer.from_pretrained(t.tok_dir)
    eos = tok.convert_tokens_to_ids(EOS)
    shards = [read_indexed(folder / n) for n in names]
    seqs = [s for sh in shards for s in sh["seqs"]]
    assert len(seqs) == len(exported) == len(t.picked)
    for seq, text in zip(seqs, exported, strict=True):
        assert seq[-1] == eos and eos not in seq[:-1].tolist()
        assert tok.decode(seq[:-1].tolist(), clean_up_tokenization_spaces=False) == text

    # Token counts: the tokenizer applied to gold.selection's documents (+ one EOS each), exactly.
    sel = t.lh.read(gold.SELECTION).toPandas().sort_values("rank")
    by_id = {d["doc_id"]: d["text"] for d in t.docs}
    want = [len(tok(by_id[i])["input_ids"]) + 1 for i in sel["doc_id"]]
    assert [len(s) for s in seqs] == want
    assert man["tokens"] == sum(want) and man["documents"] == len(want)
    assert man["selection_tokens"] == int(sel["tokens"].sum())

    # Shards: whole documents, cut where the running token count crosses a multiple of shard_tokens.
    starts = np.concatenate([[0], np.cumsum(want)[:-1]])
    cut = pd.Series(starts // SHARD_TOKENS).rank(method="dense").astype(int) - 1
    assert [len(sh["seqs"]) for sh in shards] == cut.value_counts().sort_index().tolist()
    for i, (sh, m) in enumerate(zip(shards, man["shards"], strict=True)):
        n = len(sh["lengths"])
        assert sh["magic"] == b"MMIDIDX\x00\x00" and (sh["version"], sh["code"], sh["tail"]) == (1, 8, 0)
        assert sh["doc_index"].tolist() == list(range(n + 1))  # one sequence per document
        assert sh["pointers"].tolist() == (2 * np.concatenate([[0], np.cumsum(sh["lengths"])[:-1]])).tolist()
        assert (m["docs"], m["tokens"], m["bin_bytes"]) == (n, int(sh["lengths"].sum()), sh["bin_bytes"])
        raw = (folder / f"{m['name']}.bin").read_bytes()
        assert m["bin_sha256"] == hashlib.sha256(raw).hexdigest()
        if i < len(shards) - 1:  # within one document of the target
            assert SHARD_TOKENS - max(want) < m["tokens"] < SHARD_TOKENS + max(want)

    # The manifest names the tokenizer, hashes its files and records the selection's versions.
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(t.tok_dir.iterdir())}
    combined = "".join(f"{k}\t{v}\n" for k, v in files.items()).encode("utf-8")
    assert man["tokenizer"]["files"] == files
    assert man["tokenizer"]["sha256"] == hashlib.sha256(combined).hexdigest()
    assert (man["tokenizer"]["name"], man["tokenizer"]["eos_token_id"]) == (str(t.tok_dir), eos)
    assert (man["format"], man["dtype"], man["shard_tokens"]) == ("tokens", "uint16", SHARD_TOKENS)
    assert man["table_versions"] == {**json.loads(t.versions), "gold.selection": t.lh.version(gold.SELECTION)}
    assert man["selection"]["run_id"] == "sel-0"
    assert "betr (tokens): 18 docs" in out


def test_tokens_bad_conf_is_one_line(tok_lake, capsys):
    t = tok_lake
    missing = t.tmp / "no-such-tokenizer"
    code, _ = _run(t.conf(format="tokens", path=str(t.tmp / "bad"), tokens={"tokenizer": str(missing)}))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.count("\n") == 1
    assert f"export.tokens.tokenizer: tokenizer folder {missing} does not exist" in err
    assert not (t.tmp / "bad").exists()
    # A folder that is not a tokenizer: one line too.
    (t.tmp / "empty").mkdir(exist_ok=True)
    code, _ = _run(t.conf(format="tokens", tokens={"tokenizer": str(t.tmp / "empty")}))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and err.count("\n") == 1 and "cannot load the tokenizer" in err
    # Conf errors: tokens without a tokenizer; two file formats that would share a folder.
    assert _run(t.conf(format="tokens"))[0] == EXIT_USAGE
    assert "format tokens needs export.tokens.tokenizer" in capsys.readouterr().err
    assert _run(t.conf(format=["jsonl.gz", "parquet"]))[0] == EXIT_USAGE
    assert "pick one of them" in capsys.readouterr().err
