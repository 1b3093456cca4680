"""Raw record readers that run on executors, one input split per call.

Every record a reader meets becomes exactly one row: an accepted document or a reject with its reason,
file and position. A final ``file`` row per split carries how many records the split produced, so the
driver can reconcile what it publishes against what was read. Reading streams: memory per task is bounded
by the largest record allowed (``line_limit``) and a batch of rows, never by the file size.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from schemas.ingest import PARSED_SCHEMA
from udfs.text import doc_id, html_to_text, registered_domain

FORMATS = ("jsonl", "parquet", "warc")
_EXTENSIONS = (
    (".warc.gz", "warc"),
    (".wet.gz", "warc"),
    (".warc", "warc"),
    (".wet", "warc"),
    (".parquet", "parquet"),
    (".jsonl.gz", "jsonl"),
    (".jsonl.zst", "jsonl"),
    (".jsonl", "jsonl"),
    (".json.gz", "jsonl"),
    (".json.zst", "jsonl"),
    (".json", "jsonl"),
    (".ndjson", "jsonl"),
)


def detect_format(path: str) -> str | None:
    """The format of a file from its name, or None if the name says nothing we read."""
    name = path.lower()
    for ext, fmt in _EXTENSIONS:
        if name.endswith(ext):
            return fmt
    return None


def compression(path: str) -> str | None:
    name = path.lower()
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst") or name.endswith(".zstd"):
        return "zstd"
    return None


@dataclass(frozen=True)
class Split:
    """A piece of one input file: the whole file, or a byte range of a plain JSONL file."""

    source: str
    uri: str
    fmt: str
    start: int = 0
    end: int | None = None
    text_field: str = "text"
    url_field: str | None = "url"
    id_field: str | None = "id"


@dataclass(frozen=True)
class ReaderOptions:
    """Limits for reading; from the profile's ``ingest`` section."""

    max_doc_bytes: int
    line_limit: int
    snippet_chars: int = 200
    batch_rows: int = 2048


class _Out:
    """Builds result rows for one split and counts them."""

    def __init__(self, split: Split, opts: ReaderOptions):
        self.split = split
        self.opts = opts
        self.n = 0
        self.lines = None

    def _base(self, record_number, byte_offset) -> dict:
        self.n += 1
        return {
            "kind": None,
            "source": self.split.source,
            "source_file": self.split.uri,
            "split_start": self.split.start,
            "record_number": record_number,
            "byte_offset": byte_offset,
            "doc_id": None,
            "source_id": None,
            "url": None,
            "domain": None,
            "text": None,
            "n_bytes": None,
            "meta": None,
            "reason": None,
            "detail": None,
            "snippet": None,
            "n_records": None,
            "n_lines": None,
        }

    def snippet(self, raw) -> str | None:
        if raw is None:
            return None
        if isinstance(raw, (bytes, bytearray)):
            raw = bytes(raw[: self.opts.snippet_chars * 4]).decode("utf-8", "backslashreplace")
        elif not isinstance(raw, str):
            raw = json.dumps(raw, default=str, ensure_ascii=False)
        return raw[: self.opts.snippet_chars]

    def reject(self, reason: str, detail: str, raw=None, record_number=None, byte_offset=None) -> dict:
        row = self._base(record_number, byte_offset)
        row.update(kind="reject", reason=reason, detail=detail[:1000], snippet=self.snippet(raw))
        return row

    def record(self, obj: dict, raw, record_number=None, byte_offset=None) -> dict:
        """A mapped record → document row, or the reject that explains why it is not one."""
        s, opts = self.split, self.opts
        text = obj.get(s.text_field)
        where = dict(raw=raw, record_number=record_number, byte_offset=byte_offset)
        if text is None:
            return self.reject("missing_text", f"no {s.text_field!r} field (or it is null)", **where)
        if not isinstance(text, str):
            return self.reject(
                "non_string_text", f"{s.text_field!r} is {type(text).__name__}, not a string", **where
            )
        try:
            n_bytes = len(text.encode("utf-8"))
        except UnicodeEncodeError as exc:  # lone surrogates from "\ud800"-style JSON escapes
            return self.reject("invalid_utf8", f"text is not encodable as UTF-8: {exc.reason}", **where)
        if n_bytes > opts.max_doc_bytes:
            return self.reject(
                "too_large", f"text is {n_bytes} bytes, over max_doc_bytes={opts.max_doc_bytes}", **where
            )
        if not text.strip():
            return self.reject("empty_text", "text is empty or whitespace only", **where)
        ids = {}
        for key, name in (("source_id", s.id_field), ("url", s.url_field)):
            value = obj.get(name) if name else None
            if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
                return self.reject("bad_field_type", f"{name!r} is {type(value).__name__}", **where)
            if isinstance(value, float) and not math.isfinite(value):
                return self.reject("bad_field_type", f"{name!r} is {value}", **where)
            ids[key] = None if value is None else str(value)
        mapped = {s.text_field, s.id_field, s.url_field}
        meta = {k: v for k, v in obj.items() if k not in mapped}
        row = self._base(record_number, byte_offset)
        row.update(
            kind="doc",
            text=text,
            n_bytes=n_bytes,
            source_id=ids["source_id"],
            url=ids["url"],
            domain=registered_domain(ids["url"]),
            doc_id=doc_id(s.source, ids["source_id"], text, ids["url"]),
            meta=json.dumps(meta, sort_keys=True, ensure_ascii=False, default=str),
        )
        return row

    def file_row(self) -> dict:
        n = self.n
        row = self._base(None, self.split.start)
        self.n = n  # the summary row is not a record
        row.update(kind="file", n_records=n, n_lines=self.lines)
        return row


def _open(uri: str, seekable: bool = False):
    import pyarrow.fs as pafs

    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))
    else:
        fs, path = pafs.LocalFileSystem(), uri
    # compression=None: pyarrow would otherwise decompress by extension, and we decide that ourselves.
    raw = fs.open_input_file(path) if seekable else fs.open_input_stream(path, compression=None)
    return raw


def _decompressed(uri: str):
    raw = _open(uri)
    kind = compression(uri)
    # Small buffers on purpose: a truncated stream fails on the read that hits the damage, and every record
    # in the buffers before it is still delivered.
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if kind == "zstd":
        import zstandard

        return io.BufferedReader(
            zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), 1 << 16
        )
    return io.BufferedReader(raw, 1 << 20)


def _read_jsonl(split: Split, out: _Out) -> Iterator[dict]:
    limit = out.opts.line_limit
    plain = compression(split.uri) is None
    if plain and (split.start or split.end is not None):
        fh = io.BufferedReader(_open(split.uri, seekable=True), 1 << 20)
        pos = 0
        if split.start:
            fh.seek(split.start - 1)
            pos = (
                split.start - 1 + len(fh.readline())
            )  # the line that straddles start belongs to the split before
        else:
            fh.seek(0)
    else:
        fh, pos = _decompressed(split.uri), 0
    # Line numbers count from the split's start; the driver adds the lines of the splits before it.
    line_no = 0
    end = split.end
    with fh:
        while end is None or pos < end:
            out.lines = line_no
            offset = pos
            try:
                line = fh.readline(limit + 1)
            except Exception as exc:  # gzip / zstd corruption, truncated streams
                yield out.reject(
                    "unreadable_file", f"read failed after byte {offset}: {exc}", None, None, offset
                )
                return
            if not line:
                return
            pos += len(line)
            line_no += 1
            out.lines = line_no
            rec_no = line_no
            if len(line) > limit and not line.endswith(b"\n"):
                head = line[:256]
                while line and not line.endswith(b"\n"):  # drain the rest without keeping it
                    line = fh.readline(1 << 20)
                    pos += len(line)
                yield out.reject(
                    "too_large", f"record is over {limit} bytes (max_line_bytes)", head, rec_no, offset
                )
                continue
            if not line.strip():  # blank lines are not records (they still count as lines)
                continue
            try:
                decoded = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield out.reject(
                    "invalid_utf8", f"byte {exc.start} of the record: {exc.reason}", line, rec_no, offset
                )
                continue
            try:
                obj = json.loads(decoded)
            except (json.JSONDecodeError, RecursionError) as exc:
                yield out.reject("malformed_json", str(exc), decoded, rec_no, offset)
                continue
            if not isinstance(obj, dict):
                yield out.reject(
                    "not_an_object", f"a JSON {type(obj).__name__}, not an object", decoded, rec_no, offset
                )
                continue
            yield out.record(obj, decoded, rec_no, offset)


def _read_parquet(split: Split, out: _Out) -> Iterator[dict]:
    import pyarrow.parquet as pq

    row_no = 0
    try:
        pf = pq.ParquetFile(_open(split.uri, seekable=True))
        batches = pf.iter_batches(batch_size=1024)
    except Exception as exc:  # not a Parquet file, truncated footer, …
        yield out.reject("unreadable_file", f"not a readable Parquet file: {exc}")
        return
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:
            yield out.reject(
                "unreadable_file", f"row group after row {row_no} unreadable: {exc}", None, row_no + 1
            )
            return
        try:
            rows = batch.to_pylist()
        except Exception:  # invalid UTF-8 in a string column: find the rows it is in
            rows = []
            for i in range(batch.num_rows):
                try:
                    rows.append(batch.slice(i, 1).to_pylist()[0])
                except Exception as exc:
                    rows.append(exc)
        for obj in rows:
            row_no += 1
            if isinstance(obj, Exception):
                yield out.reject("invalid_utf8", f"row is not valid UTF-8: {obj}", None, row_no)
            else:
                yield out.record(obj, obj, row_no)


def _charset(content_type: str | None) -> str:
    for part in (content_type or "").split(";"):
        k, _, v = part.strip().partition("=")
        if k.lower() == "charset" and v:
            return v.strip("\"' ").lower()
    return "utf-8"


def _read_warc(split: Split, out: _Out) -> Iterator[dict]:
    from warcio.archiveiterator import ArchiveIterator

    limit = out.opts.line_limit
    rec_no = 0
    try:
        stream = _open(split.uri)
        it = ArchiveIterator(stream)
        records = iter(it)
    except Exception as exc:
        yield out.reject("unreadable_file", f"not a readable WARC file: {exc}")
        return
    while True:
        try:
            rec = next(records)
        except StopIteration:
            return
        except Exception as exc:
            yield out.reject(
                "unreadable_file", f"WARC stream broken after record {rec_no}: {exc}", None, rec_no + 1
            )
            return
        if rec.rec_type not in ("conversion", "response"):
            continue
        rec_no += 1
        offset = (
            None  # known only after the body is read: warcio's get_record_offset reads to the record's end
        )
        h = rec.rec_headers
        ctype = h.get_header("Content-Type")
        if rec.rec_type == "response":
            if rec.http_headers is None:
                yield out.reject(
                    "unreadable_file", "response record without HTTP headers", None, rec_no, offset
                )
                continue
            ctype = rec.http_headers.get_header("Content-Type") or "text/html"
        try:
            body = rec.content_stream().read(limit + 1)
            offset = it.get_record_offset()
        except Exception as exc:
            yield out.reject("unreadable_file", f"record body unreadable: {exc}", None, rec_no, offset)
            return
        if len(body) > limit:
            yield out.reject(
                "too_large", f"record body is over {limit} bytes (max_line_bytes)", body[:256], rec_no, offset
            )
            continue
        charset = _charset(ctype)
        try:
            text = body.decode(charset)
        except (UnicodeDecodeError, LookupError) as exc:
            yield out.reject("invalid_utf8", f"body is not valid {charset}: {exc}", body, rec_no, offset)
            continue
        if rec.rec_type == "response" and "html" in (ctype or "").lower():
            text = html_to_text(text)
        obj = {
            "text": text,
            "url": h.get_header("WARC-Target-URI"),
            "id": h.get_header("WARC-Record-ID"),
            "warc_type": rec.rec_type,
            "warc_date": h.get_header("WARC-Date"),
            "content_type": ctype,
        }
        lang = h.get_header("WARC-Identified-Content-Language")
        if lang:
            obj["warc_language"] = lang
        yield out.record(obj, body[:1024], rec_no, offset)


_READERS = {"jsonl": _read_jsonl, "parquet": _read_parquet, "warc": _read_warc}


def read_split(split: Split, opts: ReaderOptions) -> Iterator[dict]:
    """All result rows of one split, then its ``file`` summary row.

    Args:
        split: which file (and byte range) to read, in which format, with which field names.
        opts: size limits and snippet length.

    Yields:
        Dicts with the fields of ``schemas.ingest.PARSED_SCHEMA``.
    """
    if split.fmt == "warc":  # WARC headers have fixed names; the field map is for JSONL and Parquet
        split = Split(split.source, split.uri, split.fmt, split.start, split.end)
    out = _Out(split, opts)
    try:
        yield from _READERS[split.fmt](split, out)
    except Exception as exc:  # a reader bug or an unexpected format error must not lose the file silently
        yield out.reject("unreadable_file", f"read failed: {type(exc).__name__}: {exc}")
    yield out.file_row()


def _to_batch(rows: list[dict], schema: pa.Schema) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=schema)


def read_splits_arrow(batches: Iterable[pa.RecordBatch], opts: ReaderOptions) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: split rows in, parsed rows out in bounded batches."""
    from pyspark.sql.pandas.types import to_arrow_schema

    schema = to_arrow_schema(PARSED_SCHEMA)
    max_bytes = 32 << 20
    for batch in batches:
        for s in batch.to_pylist():
            split = Split(**s)
            rows: list[dict] = []
            size = 0
            for row in read_split(split, opts):
                rows.append(row)
                size += row["n_bytes"] or 0
                if len(rows) >= opts.batch_rows or size >= max_bytes:
                    yield _to_batch(rows, schema)
                    rows, size = [], 0
            if rows:
                yield _to_batch(rows, schema)
