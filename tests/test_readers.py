"""Executor-side readers on crafted files, without Spark: every record is a doc or a reject with a reason."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from udfs.readers import ReaderOptions, Split, detect_format, read_split
from udfs.text import doc_id, html_to_text, registered_domain

OPTS = ReaderOptions(max_doc_bytes=100, line_limit=400, snippet_chars=20)


def _read(path, fmt="jsonl", opts=OPTS, **kw):
    rows = list(read_split(Split("src", str(path), fmt, **kw), opts))
    assert rows[-1]["kind"] == "file"
    assert rows[-1]["n_records"] == len(rows) - 1
    return rows[:-1]


def _summary(rows):
    return [(r["kind"], r["reason"], r["record_number"]) for r in rows]


LINES = [
    b'{"id": "a", "url": "https://www.news.example.co.uk/x", "text": "first doc", "lang": "en"}\n',
    b'{"id": "b", "text": "broken\n',
    b'["an", "array"]\n',
    b"\n",
    b'{"id": "c", "text": "caf\xe9 latin-1"}\n',
    b'{"id": "d", "text": "' + b"x" * 120 + b'"}\n',
    b'{"id": "e", "text": "' + b"y" * 500 + b'"}\n',
    b'{"id": "f", "text": 42}\n',
    b'{"id": "g", "body": "no text field"}\n',
    b'{"id": "h", "text": " \\n\\t "}\n',
    b'{"id": {"nested": 1}, "text": "bad id"}\n',
    b'{"id": 7, "url": null, "text": "numeric id is fine"}\n',
    b'{"id": "i", "text": "lone \\ud800 surrogate"}\n',
]
EXPECTED = [
    ("doc", None, 1),
    ("reject", "malformed_json", 2),
    ("reject", "not_an_object", 3),
    ("reject", "invalid_utf8", 5),
    ("reject", "too_large", 6),  # text over max_doc_bytes
    ("reject", "too_large", 7),  # line over line_limit, drained without being held
    ("reject", "non_string_text", 8),
    ("reject", "missing_text", 9),
    ("reject", "empty_text", 10),
    ("reject", "bad_field_type", 11),
    ("doc", None, 12),
    ("reject", "invalid_utf8", 13),
]


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_jsonl_every_reason_in_each_compression(tmp_path, suffix):
    data = b"".join(LINES)
    path = tmp_path / f"f{suffix}"
    if suffix.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif suffix.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    rows = _read(path)
    assert _summary(rows) == EXPECTED
    doc = rows[0]
    assert doc["domain"] == "example.co.uk"
    assert doc["source_id"] == "a" and doc["n_bytes"] == 9
    assert json.loads(doc["meta"]) == {"lang": "en"}
    assert doc["doc_id"] == doc_id("src", "a", "first doc", "https://www.news.example.co.uk/x")
    assert rows[10]["source_id"] == "7" and rows[10]["url"] is None
    assert rows[1]["byte_offset"] == len(LINES[0])
    assert rows[1]["snippet"] == '{"id": "b", "text": '  # truncated to snippet_chars


def test_plain_jsonl_splits_cover_every_line_once(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"".join(LINES))
    size = path.stat().st_size
    whole = [(r["reason"], r["byte_offset"]) for r in _read(path)]
    for cut in range(1, size, 7):
        parts = _read(path, start=0, end=cut) + _read(path, start=cut, end=None)
        assert [(r["reason"], r["byte_offset"]) for r in parts] == whole


def test_corrupt_gzip_keeps_records_before_the_damage(tmp_path):
    good = b"".join(LINES[:1]) * 50
    data = gzip.compress(good + b'{"id": "z", "text": "tail"}\n' * 2000, mtime=0)
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])  # truncated stream
    rows = _read(path)
    assert rows[-1]["reason"] == "unreadable_file"
    assert all(r["kind"] == "doc" for r in rows[:-1])
    assert len(rows) > 50


def test_parquet_rows_and_types(tmp_path):
    table = pa.table(
        {
            "id": ["p1", "p2", "p3", "p4"],
            "url": ["https://a.example.com/", None, "https://b.example.org/", None],
            "text": ["parquet text", None, "", "x" * 150],
            "score": [0.5, 0.1, 0.2, 0.3],
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(table, path)
    rows = _read(path, "parquet")
    assert _summary(rows) == [
        ("doc", None, 1),
        ("reject", "missing_text", 2),
        ("reject", "empty_text", 3),
        ("reject", "too_large", 4),
    ]
    assert json.loads(rows[0]["meta"]) == {"score": 0.5}
    ints = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), ints)
    assert _summary(_read(ints, "parquet")) == [
        ("reject", "non_string_text", 1),
        ("reject", "non_string_text", 2),
    ]
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    assert _summary(_read(junk, "parquet")) == [("reject", "unreadable_file", None)]


def _warc(path, records):
    with open(path, "wb") as fh:
        w = WARCWriter(fh, gzip=True)
        w.write_record(w.create_warcinfo_record("x.warc.gz", {"software": "test"}))
        for kind, url, body, ctype in records:
            headers = {"WARC-Record-ID": f"<urn:uuid:{url[-1]}>"}
            if kind == "response":
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
                rec = w.create_warc_record(
                    url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=headers
                )
            else:
                rec = w.create_warc_record(
                    url, kind, payload=io.BytesIO(body), warc_content_type=ctype, warc_headers_dict=headers
                )
            w.write_record(rec)


def test_wet_and_warc_records(tmp_path):
    path = tmp_path / "c.warc.wet.gz"
    _warc(
        path,
        [
            ("conversion", "https://wet.example.com/1", b"plain words here", "text/plain"),
            ("conversion", "https://wet.example.com/2", b"bad \xff\xfe", "text/plain"),
            ("conversion", "https://wet.example.com/3", b"", "text/plain"),
            ("request", "https://wet.example.com/4", b"GET / HTTP/1.1\r\n\r\n", "application/http"),
            (
                "response",
                "https://shop.example.de/5",
                b"<html><head><title>T</title><script>var x=1;</script></head><body><p>Hello <b>web</b></p>"
                b"<p>Second&amp;para</p></body></html>",
                "text/html; charset=utf-8",
            ),
        ],
    )
    rows = _read(path, "warc")
    assert _summary(rows) == [
        ("doc", None, 1),
        ("reject", "invalid_utf8", 2),
        ("reject", "empty_text", 3),
        ("doc", None, 4),
    ]
    assert rows[0]["source_id"] == "<urn:uuid:1>" and rows[0]["domain"] == "example.com"
    assert rows[3]["text"] == "Hello web\nSecond&para"
    assert rows[3]["domain"] == "example.de"
    assert json.loads(rows[3]["meta"])["warc_type"] == "response"


def test_text_helpers():
    assert registered_domain("https://blog.cooking-notes.co.uk/a?b=1") == "cooking-notes.co.uk"
    assert registered_domain("http://192.168.0.1/x") == "192.168.0.1"
    assert registered_domain(None) is None and registered_domain("") is None
    assert doc_id("s", None, "a  b\n", "u") == doc_id("s", None, " a b", "u")
    assert doc_id("s", "1", "x", None) != doc_id("t", "1", "x", None)
    assert len(doc_id("s", "1", "x", None)) == 32
    assert html_to_text("<div>a<br>b</div><style>p{}</style>") == "a\nb"
    assert [detect_format(p) for p in ("a.jsonl.zst", "b.warc.wet.gz", "c.parquet", "d.txt")] == [
        "jsonl",
        "warc",
        "parquet",
        None,
    ]
