"""Executor-side readers on crafted files, without Spark: every record is a doc or a reject with a reason."""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import json
import lzma
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from udfs.readers import read_split
from udfs.splits import ReaderOptions, Split, detect_format
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


def _compress(data: bytes, suffix: str) -> bytes:
    """``data`` as a file named ``*suffix`` holds it; bz2 as two streams, as pbzip2 and lbzip2 write it."""
    if suffix.endswith(".gz"):
        return gzip.compress(data, mtime=0)
    if suffix.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(data)
    if suffix.endswith(".bz2"):
        cut = len(data) // 2
        return bz2.compress(data[:cut]) + bz2.compress(data[cut:])
    if suffix.endswith(".xz"):
        return lzma.compress(data)
    return data


CODECS = ["", ".gz", ".zst", ".bz2", ".xz"]


@pytest.mark.parametrize("suffix", [f".jsonl{c}" for c in CODECS] + [".ndjson.gz"])
def test_jsonl_every_reason_in_each_compression(tmp_path, suffix):
    assert detect_format(f"f{suffix}") == "jsonl"
    path = _put(tmp_path / f"f{suffix}", _compress(b"".join(LINES), suffix))
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


@pytest.mark.parametrize("codec", CODECS[1:])
def test_compressed_data_under_a_plain_name_is_read_by_its_magic_number(tmp_path, codec):
    """gzip / zstd / bz2 / xz data saved as ``.jsonl`` (a download that lost its ending): read as its records,
    and when the driver cut it into byte ranges by its size, by the first range alone."""
    plain = _read(_put(tmp_path / "plain.jsonl", b"".join(LINES)))
    path = _put(tmp_path / "hidden.jsonl", _compress(b"".join(LINES), codec))
    assert _summary(_read(path)) == _summary(plain) == EXPECTED
    cut = path.stat().st_size // 2
    first, second = _read(path, start=0, end=cut), _read(path, start=cut, end=None)
    assert [(r["kind"], r["reason"], r["text"]) for r in first] == [
        (r["kind"], r["reason"], r["text"]) for r in plain
    ]
    assert second == []


def test_text_bytes_unicode_whitespace_and_empty_ids(tmp_path):
    """The record path's shortcuts (an ASCII text's length as its bytes, isspace for the empty check) agree
    with the definitions: n_bytes is the UTF-8 length, Unicode-only whitespace is empty, and an id or url of
    only spaces is none (so the doc_id comes from the text)."""
    cafe = "naïve café — 東京"
    records = [
        {"id": "a", "text": "plain ascii"},
        {"id": "b", "text": cafe},
        {"id": "c", "text": "\u3000\u2003\n"},
        {"id": "d", "text": ""},
        {"id": "  ", "url": "", "text": "no id, no url"},
        {"id": 3.5, "text": "float id"},
        {"id": True, "text": "boolean id"},
    ]
    path = tmp_path / "f.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    rows = _read(path)
    assert [(r["kind"], r["reason"]) for r in rows] == [
        ("doc", None),
        ("doc", None),
        ("reject", "empty_text"),
        ("reject", "empty_text"),
        ("doc", None),
        ("doc", None),
        ("reject", "bad_field_type"),
    ]
    assert rows[0]["n_bytes"] == 11 and rows[1]["n_bytes"] == len(cafe.encode("utf-8")) == 23
    assert rows[1]["text"] == cafe
    assert rows[4]["source_id"] is None and rows[4]["url"] is None and rows[4]["domain"] is None
    assert rows[4]["doc_id"] == doc_id("src", None, "no id, no url", None)
    assert rows[5]["source_id"] == "3.5"
    assert rows[6]["detail"] == "'id' is bool"


def test_byte_order_mark_is_not_part_of_the_first_record(tmp_path):
    data = codecs.BOM_UTF8 + b'{"id": "a", "text": "first"}\r\n{"id": "b", "text": "second"}\r\n'
    for name, raw in (("bom.jsonl", data), ("bom.jsonl.gz", gzip.compress(data, mtime=0))):
        rows = _read(_put(tmp_path / name, raw))
        assert [(r["kind"], r["text"], r["byte_offset"]) for r in rows] == [
            ("doc", "first", 0),
            ("doc", "second", data.index(b'{"id": "b"')),
        ]


def _put(path, data: bytes):
    path.write_bytes(data)
    return path


ARRAY = [{"id": "a", "text": "one", "lang": "en"}, 7, {"id": "b", "text": ""}, {"id": "c", "text": "three"}]


@pytest.mark.parametrize("suffix", [f".json{c}" for c in CODECS])
def test_json_file_holding_one_array_is_read_item_by_item(tmp_path, suffix):
    data = codecs.BOM_UTF8 + b"\n  " + json.dumps(ARRAY, indent=2).encode()
    rows = _read(_put(tmp_path / f"export{suffix}", _compress(data, suffix)))
    assert _summary(rows) == [
        ("doc", None, 1),
        ("reject", "not_an_object", 2),
        ("reject", "empty_text", 3),
        ("doc", None, 4),
    ]
    assert rows[0]["doc_id"] == doc_id("src", "a", "one", None) and json.loads(rows[0]["meta"]) == {
        "lang": "en"
    }
    assert rows[1]["snippet"] == "7" and rows[3]["text"] == "three"


def test_json_array_split_in_byte_ranges_is_read_once(tmp_path):
    path = _put(tmp_path / "big.json", json.dumps(ARRAY, indent=2).encode())
    whole = list(read_split(Split("src", str(path), "jsonl"), OPTS))
    cut = path.stat().st_size // 2
    first = list(read_split(Split("src", str(path), "jsonl", 0, cut), OPTS))
    second = list(read_split(Split("src", str(path), "jsonl", cut, None), OPTS))
    assert first == whole
    assert [r["kind"] for r in second] == ["file"] and second[0]["n_lines"] == 0


def test_json_array_too_large_or_broken_is_one_unreadable_file(tmp_path):
    path = _put(tmp_path / "big.json", json.dumps(ARRAY).encode())
    small = ReaderOptions(max_doc_bytes=100, line_limit=400, array_limit=20)
    (row,) = _read(path, opts=small)
    assert row["reason"] == "unreadable_file"
    assert row["detail"].startswith("a JSON array file over max_json_array_bytes=20 (it is parsed whole)")
    (row,) = _read(_put(tmp_path / "cut.json", json.dumps(ARRAY).encode()[:-9]))
    assert row["reason"] == "unreadable_file" and "does not parse" in row["detail"]
    # Only .json names are read as one array: a JSON-lines file whose first record is a list stays lines.
    rows = _read(_put(tmp_path / "lines.jsonl", b'["a"]\n{"text": "t"}\n'))
    assert _summary(rows) == [("reject", "not_an_object", 1), ("doc", None, 2)]


def test_plain_jsonl_splits_cover_every_line_once(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"".join(LINES))
    size = path.stat().st_size
    whole = [(r["reason"], r["byte_offset"]) for r in _read(path)]
    for cut in range(1, size, 7):
        parts = _read(path, start=0, end=cut) + _read(path, start=cut, end=None)
        assert [(r["reason"], r["byte_offset"]) for r in parts] == whole


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_corrupt_gzip_keeps_records_before_the_damage(tmp_path, suffix):
    good = b"".join(LINES[:1]) * 50
    # Text that does not compress to nothing, so a cut in the compressed bytes is a cut in the records.
    # bz2 decodes whole blocks (of a stream): what it keeps is the first of the two streams.
    rng = random.Random(0)
    tail = b"".join(
        b'{"id": "z%d", "text": "%s"}\n' % (i, rng.randbytes(24).hex().encode()) for i in range(2000)
    )
    data = _compress(good + tail, suffix)
    path = tmp_path / f"broken.jsonl{suffix}"
    path.write_bytes(data[: len(data) * 3 // 5])  # truncated stream
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
    # Cut in byte ranges, the file is still one reject: its first range's.
    assert _summary(_read(junk, "parquet", start=0, end=8)) == [("reject", "unreadable_file", None)]
    assert _read(junk, "parquet", start=8, end=None) == []


def test_parquet_strings_stored_as_binary_are_read_as_utf8(tmp_path):
    """BINARY columns without the UTF8 annotation (older writers; Spark's binaryAsString): the mapped text,
    url and id are decoded as UTF-8, a row whose bytes are not UTF-8 is one reject, other binary columns stay
    bytes in meta."""
    large = pa.array([b"https://a.example.com/x", None, None], type=pa.large_binary())
    table = pa.table(
        {
            "id": pa.array([b"b1", b"b2", b"b3"], type=pa.binary()),
            "text": pa.array([b"binary text", "caf\u00e9".encode(), b"bad \xe9 byte"], type=pa.binary()),
            "url": large,
            "blob": pa.array([b"\xff\x00", None, None], type=pa.binary()),
        }
    )
    path = tmp_path / "bin.parquet"
    pq.write_table(table, path)
    rows = _read(path, "parquet")
    assert _summary(rows) == [("doc", None, 1), ("doc", None, 2), ("reject", "invalid_utf8", 3)]
    assert [(r["source_id"], r["text"], r["url"]) for r in rows[:2]] == [
        ("b1", "binary text", "https://a.example.com/x"),
        ("b2", "caf\u00e9", None),
    ]
    assert rows[0]["doc_id"] == doc_id("src", "b1", "binary text", "https://a.example.com/x")
    assert json.loads(rows[0]["meta"]) == {"blob": repr(b"\xff\x00")}


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
    # Default extraction (resiliparse, title kept); the plain extractor keeps the old output.
    assert rows[3]["text"] == "T\n\nHello web\n\nSecond&para"
    assert json.loads(rows[3]["meta"])["charset"] == "utf-8"
    plain = ReaderOptions(max_doc_bytes=100, line_limit=400, html_extractor="plain", keep_title=False)
    assert _read(path, "warc", opts=plain)[3]["text"] == "Hello web\nSecond&para"
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
    names = ("a.jsonl.zst", "b.warc.wet.gz", "c.parquet", "d.txt", "e.JSON.XZ", "f.ndjson.zstd")
    assert [detect_format(p) for p in names] == ["jsonl", "warc", "parquet", None, "jsonl", "jsonl"]
    # warcio reads plain and gzipped archives only; a Parquet file compresses inside: the name is unknown
    # (ingest then asks for ``format``), not read as garbage.
    assert [detect_format(p) for p in ("g.warc.bz2", "h.wet.zst", "i.parquet.gz")] == [None] * 3


# ---------------------------------------------------------------------------------------------
# Crawl formats: gzip layouts, record types, ARC, charsets, HTML extraction, field paths
# ---------------------------------------------------------------------------------------------


def _file_row(path, fmt="warc", opts=OPTS, **kw):
    return list(read_split(Split("src", str(path), fmt, **kw), opts))[-1]


def _wet_records(n: int) -> list[tuple]:
    info = ("warcinfo", "", b"software: test\r\n", "application/warc-fields")
    return [info] + [
        ("conversion", f"https://wet.example.com/{i}", f"plain words number {i}".encode(), "text/plain")
        for i in range(1, n + 1)
    ]


def _archive(records: list[tuple], members: bool) -> tuple[bytes, list[int]]:
    """A WARC of (type, url, payload, content type) records: one gzip member per record, or uncompressed.

    Returns the bytes and where each record starts.
    """
    buf = io.BytesIO()
    w = WARCWriter(buf, gzip=members)
    starts = []
    for kind, url, body, ctype in records:
        starts.append(buf.tell())
        headers = {"WARC-Record-ID": f"<urn:uuid:{len(starts):08d}-0000-0000-0000-000000000000>"}
        if kind in ("response", "request"):
            http = (
                StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
                if kind == "response"
                else StatusAndHeaders("GET / HTTP/1.1", [("Host", "e.com")], is_http_request=True)
            )
            rec = w.create_warc_record(
                url, kind, payload=io.BytesIO(body), http_headers=http, warc_headers_dict=headers
            )
        else:
            rec = w.create_warc_record(
                url, kind, payload=io.BytesIO(body), warc_content_type=ctype, warc_headers_dict=headers
            )
        w.write_record(rec)
    return buf.getvalue(), starts


@pytest.mark.parametrize("layout", ["one_gzip_stream", "gzip_member_per_record", "uncompressed"])
def test_wet_every_gzip_layout_gives_every_record(tmp_path, layout):
    raw, starts = _archive(_wet_records(7), members=layout == "gzip_member_per_record")
    if layout == "one_gzip_stream":  # `gzip file.warc.wet`: warcio alone says "non-chunked gzip file"
        raw = gzip.compress(raw, mtime=0)
    path = tmp_path / ("c.warc.wet" if layout == "uncompressed" else "c.warc.wet.gz")
    path.write_bytes(raw)
    rows = _read(path, "warc")
    assert _summary(rows) == [("doc", None, i) for i in range(1, 8)]
    assert [r["text"] for r in rows] == [f"plain words number {i}" for i in range(1, 8)]
    assert [r["url"] for r in rows] == [f"https://wet.example.com/{i}" for i in range(1, 8)]
    if layout == "gzip_member_per_record":  # offsets are the members' starts, as a CC index gives them
        assert [r["byte_offset"] for r in rows] == starts[1:]
    assert _file_row(path)["n_skipped"] == {"warcinfo": 1}


@pytest.mark.parametrize("keep", [0.3, 0.8])  # the cut falls in the record's header, then in its body
def test_wet_truncated_last_member_keeps_the_records_before(tmp_path, keep):
    records = _wet_records(6)
    long_text = " ".join(f"w{i * 7919 % 10007}" for i in range(800)).encode()
    records.append(("conversion", "https://wet.example.com/7", long_text, "text/plain"))
    raw, starts = _archive(records, members=True)
    path = tmp_path / "cut.warc.wet.gz"
    path.write_bytes(raw[: starts[-1] + int((len(raw) - starts[-1]) * keep)])
    rows = _read(path, "warc", opts=ReaderOptions(max_doc_bytes=10_000, line_limit=50_000))
    assert _summary(rows) == [("doc", None, i) for i in range(1, 7)] + [("reject", "unreadable_file", 7)]
    assert rows[-1]["detail"].startswith("record cut short")
    assert rows[-1]["detail"].endswith("; last good record: 6")
    # The same damage in a file compressed as one gzip stream: the records whose bytes arrived are kept.
    one = gzip.compress(_archive(_wet_records(7), members=False)[0], mtime=0)
    path.write_bytes(one[: len(one) - 40])
    rows = _read(path, "warc")
    assert [r["kind"] for r in rows[:-1]] == ["doc"] * (len(rows) - 1) and len(rows) >= 5
    assert rows[-1]["reason"] == "unreadable_file"


def test_record_types_are_counted_and_skipped(tmp_path):
    html = b"<html><head><title>Page</title></head><body><p>A page with words in it.</p></body></html>"
    raw, _ = _archive(
        [
            ("warcinfo", "", b"software: test\r\n", "application/warc-fields"),
            ("request", "https://a.example.com/", b"", ""),
            ("response", "https://a.example.com/", html, "text/html; charset=utf-8"),
            ("response", "https://a.example.com/logo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
            ("metadata", "https://a.example.com/", b"fetchTimeMs: 12\r\n", "application/warc-fields"),
            ("resource", "https://a.example.com/r.txt", b"a resource", "text/plain"),
            ("revisit", "https://a.example.com/", b"", "application/http; msgtype=response"),
        ],
        members=True,
    )
    path = tmp_path / "mixed.warc.gz"
    path.write_bytes(raw)
    rows = _read(path, "warc")
    assert _summary(rows) == [("doc", None, 1)]
    assert _file_row(path)["n_skipped"] == {
        "warcinfo": 1,
        "request": 1,
        "response_non_text": 1,
        "metadata": 1,
        "resource": 1,
        "revisit": 1,
    }
    # A WAT file is WARC metadata records (JSON): it yields no document, only counts.
    wat, _ = _archive(
        [("warcinfo", "", b"software: test\r\n", "application/warc-fields")]
        + [
            ("metadata", f"https://b.example.com/{i}", b'{"Envelope": {}}', "application/json")
            for i in range(3)
        ],
        members=True,
    )
    wat_path = tmp_path / "c.warc.wat.gz"
    wat_path.write_bytes(wat)
    assert _read(wat_path, "warc") == []
    assert _file_row(wat_path)["n_skipped"] == {"warcinfo": 1, "metadata": 3}
    assert [detect_format(p) for p in ("x.warc.wat.gz", "y.arc.gz", "z.arc", "w.wat")] == ["warc"] * 4


def _arc(records: list[tuple]) -> bytes:
    """ARC v1, written by hand: a filedesc:// version block, then `URL IP date type length` + HTTP."""
    desc = b"1 0 Test Archive\nURL IP-address Archive-date Content-type Archive-length\n"
    out = [
        gzip.compress(
            b"filedesc://test.arc 0.0.0.0 19980101000000 text/plain %d\n" % len(desc) + desc + b"\n"
        )
    ]
    for url, ip, date, ctype, body in records:
        http = b"HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n" % (ctype, len(body))
        payload = http + body
        head = f"{url} {ip} {date} {ctype.decode()} {len(payload)}\n".encode()
        out.append(gzip.compress(head + payload + b"\n", mtime=0))
    return b"".join(out)


def test_arc_records_keep_url_id_domain_and_date(tmp_path):
    page = b"<html><head><title>Old page</title></head><body><p>Hello from the web of 1998.</p></body></html>"
    path = tmp_path / "IA-001.arc.gz"
    path.write_bytes(
        _arc(
            [
                ("http://www.example.co.uk/old.html", "1.2.3.4", "19980102030405", b"text/html", page),
                ("http://www.example.co.uk/logo.gif", "1.2.3.4", "19980102030406", b"image/gif", b"GIF89a"),
                ("http://other.example.org/", "5.6.7.8", "19980102030407", b"text/html", page),
            ]
        )
    )
    rows = _read(path, "warc")
    assert _summary(rows) == [("doc", None, 1), ("doc", None, 2)]
    first = rows[0]
    assert first["url"] == "http://www.example.co.uk/old.html" and first["domain"] == "example.co.uk"
    assert first["text"] == "Old page\n\nHello from the web of 1998."
    meta = json.loads(first["meta"])
    assert meta["warc_date"] == "1998-01-02T03:04:05Z" and meta["archive_format"] == "arc"
    assert first["source_id"].startswith("<urn:uuid:") and first["source_id"] != rows[1]["source_id"]
    # The id is derived from the capture, so reading the file again gives the same ids and doc_ids.
    again = _read(path, "warc")
    assert [(r["source_id"], r["doc_id"]) for r in again] == [(r["source_id"], r["doc_id"]) for r in rows]
    assert _file_row(path)["n_skipped"] == {"warcinfo": 1, "response_non_text": 1}
    plain = tmp_path / "IA-002.arc"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    assert [r["url"] for r in _read(plain, "warc")] == [r["url"] for r in rows]


NESTED = [
    {"id": "d1", "text": "nested one", "metadata": {"url": "https://n.example.com/1", "date": "2020"}},
    {"id": "d2", "text": "nested two", "metadata": {"url": ""}},
    {"id": "", "text": "empty id", "metadata": {"date": "2021"}},
    {"id": "d4", "body": {"content": "deep text"}, "metadata": {"url": "https://n.example.com/4"}},
]


def test_dotted_field_paths_in_jsonl_and_parquet(tmp_path):
    path = tmp_path / "dolma.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in NESTED))
    rows = _read(path, url_field="metadata.url")
    assert _summary(rows) == [
        ("doc", None, 1),
        ("doc", None, 2),
        ("doc", None, 3),
        ("reject", "missing_text", 4),
    ]
    assert [(r["url"], r["domain"], r["source_id"]) for r in rows[:3]] == [
        ("https://n.example.com/1", "example.com", "d1"),
        (None, None, "d2"),  # "url": "" is no url
        (None, None, None),  # "id": "" is no id: the doc_id comes from the text
    ]
    assert rows[2]["doc_id"] == doc_id("src", None, "empty id", None)
    assert [json.loads(r["meta"]) for r in rows[:3]] == [
        {"metadata": {"date": "2020"}},
        {},
        {"metadata": {"date": "2021"}},
    ]
    file_row = _file_row(path, "jsonl", url_field="metadata.url")
    assert (file_row["n_mapped"], file_row["field_misses"]) == (4, {"metadata.url": 1, "text": 1})
    deep = _read(path, text_field="body.content", url_field="metadata.link")
    assert [r["text"] for r in deep if r["kind"] == "doc"] == ["deep text"]
    assert _file_row(path, "jsonl", text_field="body.content", url_field="metadata.link")["field_misses"] == {
        "body.content": 3,
        "metadata.link": 4,  # never resolves: the job warns
    }
    pq_path = tmp_path / "nested.parquet"
    pq.write_table(
        pa.table(
            {
                "text": ["pq one", "pq two"],
                "metadata": [{"url": "https://p.example.org/a", "date": "x"}, {"url": None, "date": "y"}],
            }
        ),
        pq_path,
    )
    rows = _read(pq_path, "parquet", url_field="metadata.url", id_field=None)
    assert [(r["url"], r["domain"]) for r in rows] == [
        ("https://p.example.org/a", "example.org"),
        (None, None),
    ]
    assert json.loads(rows[0]["meta"]) == {"metadata": {"date": "x"}}


def test_small_fixes_limits_and_unreadable_details(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(b'{"text": "' + b"x" * 500 + b'"}\n')
    assert _read(path)[0]["detail"] == (
        "record is over 400 bytes, the raw-record limit 400 = 4 x max_doc_bytes + 64 KiB "
        "(max_doc_bytes=100; or set max_line_bytes)"
    )
    set_limit = ReaderOptions(max_doc_bytes=100, line_limit=400, line_limit_set=True)
    assert _read(path, opts=set_limit)[0]["detail"] == "record is over 400 bytes, max_line_bytes=400"
    good = b"".join(LINES[:1]) * 50
    data = gzip.compress(good + b'{"id": "z", "text": "tail"}\n' * 2000, mtime=0)
    cut = tmp_path / "broken.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    rows = _read(cut)
    last = rows[-1]
    assert last["reason"] == "unreadable_file" and last["record_number"] == len(rows)
    assert last["detail"].endswith(f"; last good record: {len(rows) - 1}")
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet at all")
    assert _read(junk, "parquet")[0]["detail"].endswith("; no record read")
