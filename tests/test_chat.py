"""Instruction data in the messages format: reading (good records and malformed ones as rejects), bronze and
silver keeping the structure, RDS+ embedding the chat-templated text, export writing messages back."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from udfs.chat import ChatTemplate, render_plain
from udfs.readers import read_split
from udfs.splits import ReaderOptions, Split

# The same module the pipeline fixture's builders come from (one module, one RNG_LOCK).
sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_models  # noqa: E402

OPTS = ReaderOptions(max_doc_bytes=1000, line_limit=4000, snippet_chars=20)
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)

CHAT = [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "2 + 2 = 4."}]
RECORDS = [
    {"id": "c1", "messages": CHAT, "dataset": "tulu"},
    {
        "id": "c2",
        "conversations": [{"from": "human", "value": "Hi there."}, {"from": "gpt", "value": "Hello!"}],
    },
    {"id": "t1", "text": "A plain web page."},
    {"id": "b1", "messages": "not a list"},
    {"id": "b2", "messages": []},
    {"id": "b3", "messages": [{"role": "user"}]},
    {"id": "b4", "messages": [{"role": "user", "content": 5}]},
    {"id": "b5", "messages": ["hi"]},
    {"id": "b6", "conversations": [{"from": "human"}]},
    {"id": "b7", "messages": [{"role": " ", "content": "x"}]},
    {"id": "b8"},
]
# (kind, reason, detail) per record, in order.
EXPECTED = [
    ("doc", None, None),
    ("doc", None, None),
    ("doc", None, None),
    ("reject", "malformed_messages", "'messages' is str, not a list"),
    ("reject", "malformed_messages", "'messages' is an empty list"),
    ("reject", "malformed_messages", "messages[0] has no 'content'"),
    ("reject", "malformed_messages", "messages[0].content is int, not a string"),
    ("reject", "malformed_messages", "messages[0] is str, not an object"),
    ("reject", "malformed_messages", "conversations[0] has no 'value'"),
    ("reject", "malformed_messages", "messages[0].role is empty"),
    ("reject", "missing_text", "no 'text' field (or it is null)"),
]


def _read(path, fmt="jsonl"):
    rows = list(read_split(Split("src", str(path), fmt), OPTS))
    assert rows[-1]["kind"] == "file" and rows[-1]["n_records"] == len(rows) - 1
    return rows[:-1]


def test_messages_jsonl_and_parquet_read_with_reject_reasons(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    rows = _read(path)
    assert [(r["kind"], r["reason"], r["detail"]) for r in rows] == EXPECTED
    c1, c2, t1 = rows[:3]
    assert (c1["format"], c1["messages"]) == ("chat", CHAT)
    assert c1["text"] == "<|user|>\nWhat is 2 + 2?\n<|assistant|>\n2 + 2 = 4."
    assert c1["n_bytes"] == len(c1["text"].encode()) and json.loads(c1["meta"]) == {"dataset": "tulu"}
    # ShareGPT's speakers become the messages format's roles; the list is not kept in meta.
    assert c2["messages"] == [
        {"role": "user", "content": "Hi there."},
        {"role": "assistant", "content": "Hello!"},
    ]
    assert json.loads(c2["meta"]) == {}
    assert (t1["format"], t1["messages"], t1["text"]) == ("text", None, "A plain web page.")
    # Parquet: a list<struct> column is read the same way.
    pq.write_table(
        pa.Table.from_pylist([{**RECORDS[0], "text": None}, {"id": "t", "text": "x", "messages": None}]),
        tmp_path / "c.parquet",
    )
    got = _read(tmp_path / "c.parquet", "parquet")
    assert [(r["format"], r["messages"]) for r in got] == [("chat", CHAT), ("text", None)]


def _tokenizer(template: str | None):

    tok = tiny_models.bpe_tokenizer(["<|user|> What is 2 + 2? <|assistant|> 4."] * 3, vocab_size=300)
    tok.chat_template = template
    return tok


TEMPLATE = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"


def test_rds_embeds_the_chat_templated_text(tmp_path):
    from jobs.score_similarity import _rds_embed
    from udfs.model_spec import ModelSpec
    from udfs.models import get_runner

    folder = tiny_models.causal_lm(tmp_path / "lm", [], 64, seed=1, tokenizer=_tokenizer(TEMPLATE))
    spec = ModelSpec(role="r", id="rds", path=str(folder))
    runner = get_runner(spec, "rds_encoder")
    batch = pd.DataFrame({"text": ["flattened, not embedded", "a plain page"], "messages": [CHAT, None]})
    # With the tokenizer's chat template, then without one (the plain template).
    for want in ("[user] What is 2 + 2?\n[assistant] 2 + 2 = 4.\n", render_plain(CHAT)):
        assert ChatTemplate(runner.tokenizer).render(CHAT) == want
        assert list(runner.model_texts(batch)) == [want, "a plain page"]
        got = _rds_embed(spec, batch)
        ref = runner.predict_batch(pd.Series([want, "a plain page"]))
        np.testing.assert_allclose(np.stack(got["embedding"]), np.stack(ref["embedding"]), atol=1e-6)
        assert list(got["n_tokens"]) == list(ref["n_tokens"])
        runner.tokenizer.chat_template = None


ASK = "Could you tell me which city is the capital of France and why it became the capital"
ANSWER = {
    "role": "assistant",
    "content": "Paris is the capital of France; it has been the seat of the kings.",
}


def test_bronze_silver_keep_messages_and_export_writes_them_back(spark, tmp_path):
    from jobs.clean_steps import Steps, analyze, clean_documents
    from jobs.export import export_rows
    from jobs.ingest_read import read_raw, to_documents
    from jobs.tables.base import conform
    from schemas import bronze, ref, silver

    path = tmp_path / "mixed.jsonl"
    page = "The committee met on Tuesday and agreed on a new budget for the library and the park."
    recs = [
        {"id": "c1", "messages": [{"role": "user", "content": ASK + "  please\u200b."}, ANSWER]},
        {"id": "c2", "messages": [{"role": "user", "content": ASK + "?"}, ANSWER]},
        {"id": "t1", "text": page},
        {"id": "b1", "messages": [{"role": "user", "content": None}]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    parsed = read_raw(spark, [Split("src", str(path), "jsonl")], OPTS, 1 << 20).persist()
    rejects = parsed.filter("kind = 'reject'").select("reason", "detail").collect()
    assert [tuple(r) for r in rejects] == [("malformed_messages", "messages[0] has no 'content'")]
    docs = conform(parsed.filter("kind = 'doc'").transform(to_documents("ingest-0", NOW)), bronze.DOCUMENTS)
    got = {r["source_id"]: r for r in docs.collect()}
    assert {k: r["format"] for k, r in got.items()} == {"c1": "chat", "c2": "chat", "t1": "text"}
    assert [m.asDict() for m in got["c2"]["messages"]] == [{"role": "user", "content": ASK + "?"}, ANSWER]
    assert got["t1"]["messages"] is None

    # silver: the web rules (Gopher's 50 words would drop both chat records) judge only the page.
    from udfs.quality_rules import validate_rules

    rules = [("gopher_quality", {})]
    benchmarks = spark.createDataFrame([], ref.BENCHMARKS.schema)
    kept, filtered, *_rest, cached, _pii = clean_documents(
        docs, benchmarks, Steps(analyze(["en"], 0.0, validate_rules(rules))), "clean-0", NOW
    )
    kept = conform(kept, silver.DOCUMENTS)
    by_id = {r["doc_id"]: r for r in kept.collect()}
    assert sorted((r["format"], r["text"].split("\n")[0]) for r in by_id.values()) == [
        ("chat", "<|user|>"),
        ("chat", "<|user|>"),
    ]
    assert [(r["doc_id"], r["reason"]) for r in filtered.collect()] == [
        (got["t1"]["doc_id"], "gopher_quality:word_count")
    ]
    c1 = by_id[got["c1"]["doc_id"]]
    normalized = [{"role": "user", "content": ASK + " please."}, ANSWER]
    assert [m.asDict() for m in c1["messages"]] == normalized
    assert c1["text"] == render_plain(normalized)

    # export: a chat record's JSON line holds its messages in place of the text
    sel = spark.createDataFrame(
        [(d, "rds", i + 1, None, 10) for i, d in enumerate(sorted(by_id))],
        "doc_id string, strategy string, rank int, domain string, tokens long",
    )
    lines = [json.loads(r["_line"]) for r in export_rows(sel, kept).orderBy("rank").collect()]
    assert [(sorted(x), x["messages"]) for x in lines] == [
        (["doc_id", "domain", "messages", "n_tokens", "rank", "source", "strategy", "url"], by_id_msgs)
        for by_id_msgs in [[m.asDict() for m in by_id[d]["messages"]] for d in sorted(by_id)]
    ]
    for df in (*cached, parsed):
        df.unpersist()


def test_a_chat_record_quoting_a_benchmark_leaves_whole(spark):
    """Decontamination cuts a page's matches out, but a chat record's messages cannot be cut: it is dropped
    whole, with no silver.excisions rows; the page keeps its doc_id and its pieces."""
    from jobs.clean_steps import Steps, analyze, clean_documents
    from jobs.methods.decontam import Settings
    from schemas import ref

    quote = "what is the boiling point of water at sea level in degrees"
    filler = "The library opened a new reading room on Monday for the students of the town. " * 4
    answer = f"One hundred degrees. {filler}"  # what excising the match would leave: not empty
    msgs = [("user", f"{quote}?"), ("assistant", answer)]
    rows = [
        ("p1", None, None, "web", f"{filler}Trivia: {quote}? {filler}", 1, NOW, "text", None),
        ("c1", None, None, "chat", f"<|user|>\n{quote}?\n<|assistant|>\n{answer}", 1, NOW, "chat", msgs),
    ]
    docs = spark.createDataFrame(
        rows,
        "doc_id string, url string, domain string, source string, text string, n_bytes long, "
        "ingested_at timestamp, format string, messages array<struct<role:string,content:string>>",
    ).coalesce(1)
    bench = spark.createDataFrame(
        [("quiz", "train", "q1", f"Q: {quote}?", None, "f", "r", NOW)], ref.BENCHMARKS.schema
    )
    steps = Steps(analyze(["en"], 0.0, []), exact_dedup=False, decontam=Settings(min_ngram=8, max_ngram=8))
    kept, filtered, _q, _i, excisions, _skew, cached, _pii = clean_documents(
        docs, bench, steps, "clean-0", NOW
    )
    assert [(r["doc_id"], r["contamination"]) for r in kept.collect()] == [("p1", "quiz")]
    assert quote not in kept.first()["text"]
    assert [(r["doc_id"], r["reason"], r["detail"]) for r in filtered.collect()] == [
        (
            "c1",
            "contamination:quiz",
            "a chat record with 1 spans to cut, dropped whole; first match: example q1",
        )
    ]
    assert [r["doc_id"] for r in excisions.collect()] == ["p1"]
    for df in cached:
        df.unpersist()
