"""Raw record readers that run on executors, one input split per call.

Every data record a reader meets becomes exactly one row: an accepted document or a reject with its
reason, file and position. Records that hold no document (WARC ``warcinfo``, ``request``, ``metadata``,
``resource``, ``revisit``, the WAT ``metadata`` records, non-text responses) are counted by type instead. A
final ``file`` row per split carries how many rows the split produced, the skipped records by type and how
often each mapped field path missed, so the driver can reconcile what it publishes against what was read.
Reading streams: memory per task is bounded by the largest record allowed (``line_limit``) and a batch of
rows, never by the file size.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

import pyarrow as pa

from schemas.ingest import PARSED_SCHEMA
from udfs.charset import charset_param, codec_for, decode_html
from udfs.text import HtmlExtractor, doc_id, registered_domain

FORMATS = ("jsonl", "parquet", "warc")
# "warc" is everything warcio reads: WARC, WET and WAT (WARC files too) and the older ARC format.
_EXTENSIONS = (
    (".warc.gz", "warc"),
    (".wet.gz", "warc"),
    (".wat.gz", "warc"),
    (".arc.gz", "warc"),
    (".warc", "warc"),
    (".wet", "warc"),
    (".wat", "warc"),
    (".arc", "warc"),
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
    """Limits and HTML extraction for reading; from the profile's ``ingest`` section.

    ``line_limit_set`` says whether the user set ``max_line_bytes`` (else ``line_limit`` is derived from
    ``max_doc_bytes``), so a too-large reject names the key the user can change.
    """

    max_doc_bytes: int
    line_limit: int
    snippet_chars: int = 200
    batch_rows: int = 2048
    html_extractor: str = "resiliparse"
    keep_title: bool = True
    line_limit_set: bool = False

    @cached_property
    def html(self) -> HtmlExtractor:
        return HtmlExtractor(self.html_extractor, self.keep_title)

    def record_limit(self) -> str:
        """How the raw-record limit reads in a reject: the key the user set, or what it derives from."""
        if self.line_limit_set:
            return f"max_line_bytes={self.line_limit}"
        return (
            f"the raw-record limit {self.line_limit} = 4 x max_doc_bytes + 64 KiB "
            f"(max_doc_bytes={self.max_doc_bytes}; or set max_line_bytes)"
        )


_MISSING = object()


def get_path(obj, path: str):
    """The value at a field path: a top-level key first (so a key that contains dots still works), then
    the dotted path through nested objects (list items by index: ``a.0.b``). ``_MISSING`` if absent."""
    if not isinstance(obj, dict):
        return _MISSING
    if path in obj:
        return obj[path]
    node = obj
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _MISSING
    return node


def _without(obj: dict, paths: Iterable[str]) -> dict:
    """``obj`` less the mapped fields, for ``meta``: nested ones are removed from copies of their parents,
    and a parent left empty goes too."""
    out = dict(obj)
    for path in paths:
        if path in out or "." not in path:
            out.pop(path, None)
            continue
        parts = path.split(".")
        chain = [out]
        for part in parts[:-1]:
            node = chain[-1].get(part)
            if not isinstance(node, dict):
                break
            chain[-1][part] = node = dict(node)
            chain.append(node)
        else:
            chain[-1].pop(parts[-1], None)
            for i in range(len(chain) - 1, 0, -1):
                if not chain[i]:
                    chain[i - 1].pop(parts[i - 1], None)
    return out


class _Out:
    """Builds result rows for one split and counts them."""

    def __init__(self, split: Split, opts: ReaderOptions):
        self.split = split
        self.opts = opts
        self.n = 0
        self.lines = None
        self.last_record = None  # record number of the last row, for unreadable_file details
        self.skipped: Counter = Counter()  # record type -> records that hold no document
        self.mapped = 0  # objects the field map was applied to
        self.misses: Counter = Counter()  # field path -> objects it did not resolve in

    def _base(self, record_number, byte_offset) -> dict:
        self.n += 1
        if record_number is not None:
            self.last_record = record_number
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
            "n_skipped": None,
            "n_mapped": None,
            "field_misses": None,
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

    def unreadable(self, detail: str, record_number=None, byte_offset=None) -> dict:
        """The ``unreadable_file`` reject for damage: the detail names the last record read before it."""
        if self.last_record is None:
            where = "no record read"
        else:
            where = f"last good record: {self.last_record}"
            if self.split.start:
                where += f" (numbered from byte {self.split.start})"
        return self.reject("unreadable_file", f"{detail[:900]}; {where}", None, record_number, byte_offset)

    def skip(self, record_type: str) -> None:
        self.skipped[record_type] += 1

    def record(self, obj: dict, raw, record_number=None, byte_offset=None, mapped: bool = True) -> dict:
        """A mapped record → document row, or the reject that explains why it is not one.

        ``mapped``: the split's field map applies (JSONL, Parquet); WARC readers build ``obj`` themselves.
        """
        s, opts = self.split, self.opts
        where = dict(raw=raw, record_number=record_number, byte_offset=byte_offset)
        values = {}
        for key, path in (("text", s.text_field), ("source_id", s.id_field), ("url", s.url_field)):
            value = get_path(obj, path) if path else None
            if value is _MISSING:
                if mapped:
                    self.misses[path] += 1
                value = None
            values[key] = value
        if mapped:
            self.mapped += 1
        text = values["text"]
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
            value = values[key]
            if isinstance(value, bool) or not (value is None or isinstance(value, (str, int, float))):
                return self.reject("bad_field_type", f"{name!r} is {type(value).__name__}", **where)
            if isinstance(value, float) and not math.isfinite(value):
                return self.reject("bad_field_type", f"{name!r} is {value}", **where)
            # An empty id or url is no id or url: "" would give every such record the same doc_id / domain.
            ids[key] = None if value is None or (isinstance(value, str) and not value.strip()) else str(value)
        meta = _without(obj, [p for p in (s.text_field, s.id_field, s.url_field) if p])
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
        n, last = self.n, self.last_record
        row = self._base(None, self.split.start)
        self.n, self.last_record = n, last  # the summary row is not a record
        row.update(
            kind="file",
            n_records=n,
            n_lines=self.lines,
            n_skipped=dict(self.skipped),
            n_mapped=self.mapped,
            field_misses=dict(self.misses),
        )
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


def open_decompressed(uri: str):
    """A binary stream of the file's content, decompressed by its extension (.gz, .zst); local or remote."""
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
        fh, pos = open_decompressed(split.uri), 0
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
                yield out.unreadable(f"read failed after byte {offset}: {exc}", line_no + 1, offset)
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
                detail = f"record is over {limit} bytes, {out.opts.record_limit()}"
                yield out.reject("too_large", detail, head, rec_no, offset)
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
        yield out.unreadable(f"not a readable Parquet file: {exc}")
        return
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:
            yield out.unreadable(f"row group after row {row_no} unreadable: {exc}", row_no + 1)
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


# WARC record types that hold a document; every other type (warcinfo, request, metadata, resource,
# revisit, continuation; all of a WAT file) is counted by type and skipped.
_DOC_RECORDS = ("conversion", "response")
_HTML_MIMES = ("text/html", "application/xhtml+xml")
# A response is a document only with one of these payload types; images, scripts, PDFs, … are skipped.
_TEXT_MIMES = (*_HTML_MIMES, "text/plain")
SKIP_NON_TEXT = "response_non_text"


def _mime(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _Broken(Exception):
    """The archive stream cannot be read past this point."""


class _Gunzipped(io.RawIOBase):
    """A gzip stream for warcio: each read returns what one raw read decompressed (so the records before
    damage are delivered), and a truncated stream raises ``_Broken``: warcio takes an ``EOFError`` while
    parsing a record header for the end of the file, which would drop the damage silently."""

    def __init__(self, uri: str):
        self._gz = gzip.GzipFile(fileobj=_open(uri))

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return self._gz.read1(size if size and size > 0 else 1 << 16)
        except (EOFError, OSError, zlib.error) as exc:
            raise _Broken(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._gz.close()
        super().close()


def _archive_records(uri: str) -> Iterator:
    """(record, iterator) for every record of a WARC or ARC file, as warcio reads them.

    warcio reads a gzipped archive one gzip member per record. A file compressed as ONE gzip stream
    (``gzip file.warc``; warcio says "non-chunked gzip file detected" at the second record) is read
    again from the start, decompressed by the gzip module, and resumes after the records already given.

    Raises:
        _Broken: the file cannot be opened, or the stream breaks (truncated or corrupt member).
    """
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    given = 0
    one_stream = False
    while True:
        try:
            stream = _Gunzipped(uri) if one_stream else _open(uri)
            it = ArchiveIterator(stream, arc2warc=False)
            records = iter(it)
        except Exception as exc:
            raise _Broken(f"not a readable WARC or ARC file: {exc}") from exc
        n = 0
        try:
            while True:
                try:
                    rec = next(records)
                except StopIteration:
                    return
                except _Broken:
                    raise
                except ArchiveLoadFailed as exc:
                    if one_stream or "non-chunked" not in str(exc):
                        raise _Broken(" ".join(str(exc).split())) from exc
                    break
                except Exception as exc:  # zlib / EOF errors from a damaged member or stream
                    raise _Broken(f"{type(exc).__name__}: {exc}") from exc
                n += 1
                if n <= given:
                    continue
                given = n
                yield rec, it
        finally:
            stream.close()
        one_stream = True


def _arc_fields(h) -> tuple[str | None, str, str | None]:
    """url, id and ISO date of an ARC v1 record, whose header line is all it has."""
    from warcio.timeutils import timestamp_to_iso_date

    url = h.get_header("uri")
    stamp = h.get_header("archive-date") or ""
    try:
        date = timestamp_to_iso_date(stamp) if stamp.isdigit() else None
    except ValueError:
        date = None
    # ARC records carry no id: derive one from what identifies the capture, the same on every read.
    key = f"arc|{url}|{stamp}|{h.get_header('ip-address')}|{h.get_header('length')}"
    return url, f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}>", date


def _read_warc(split: Split, out: _Out) -> Iterator[dict]:
    limit = out.opts.line_limit
    rec_no = 0
    try:
        for rec, it in _archive_records(split.uri):
            kind = rec.rec_type
            if kind == "arc_header":  # an ARC file's filedesc:// block: its warcinfo
                out.skip("warcinfo")
                continue
            if kind not in _DOC_RECORDS:
                out.skip(kind or "unknown")
                continue
            h = rec.rec_headers
            arc = rec.format == "arc"
            if arc:
                url, rid, date = _arc_fields(h)
                ctype = h.get_header("content-type")
            else:
                url, rid = h.get_header("WARC-Target-URI"), h.get_header("WARC-Record-ID")
                date, ctype = h.get_header("WARC-Date"), h.get_header("Content-Type")
            if kind == "response":
                if rec.http_headers is not None:
                    ctype = rec.http_headers.get_header("Content-Type") or "text/html"
                elif (url or "").startswith(("http:", "https:")):
                    rec_no += 1
                    yield out.reject(
                        "unreadable_file", "response record without HTTP headers", None, rec_no, None
                    )
                    continue
                if _mime(ctype) not in _TEXT_MIMES:  # dns: records, images, scripts, …
                    out.skip(SKIP_NON_TEXT)
                    continue
            rec_no += 1
            offset = None  # known only after the body is read: get_record_offset reads to the record's end
            try:
                body = rec.content_stream().read(limit + 1)
                offset = it.get_record_offset()
            except Exception as exc:
                yield out.unreadable(f"record body unreadable: {exc}", rec_no, offset)
                return
            # A truncated gzip member ends quietly: only the record's declared length tells.
            missing = getattr(rec.raw_stream, "limit", 0)  # bytes of the declared length never delivered
            if rec.length is None or missing > 0:
                detail = (
                    "record cut short: no Content-Length (its header is incomplete)"
                    if rec.length is None
                    else f"record cut short: {missing} of its {rec.length} bytes are missing"
                )
                yield out.unreadable(detail, rec_no, offset)
                return
            if len(body) > limit:
                yield out.reject(
                    "too_large",
                    f"record body is over {limit} bytes, {out.opts.record_limit()}",
                    body[:256],
                    rec_no,
                    offset,
                )
                continue
            obj = {"url": url, "id": rid, "warc_type": kind, "warc_date": date, "content_type": ctype}
            if kind == "response":
                dec = decode_html(body, charset_param(ctype))
                if dec.text is None:
                    detail = "no charset decodes the body; tried " + ", ".join(dec.tried)
                    yield out.reject("invalid_utf8", detail, body, rec_no, offset)
                    continue
                text = dec.text
                obj.update(charset=dec.charset, charset_source=dec.source)
                if _mime(ctype) in _HTML_MIMES:
                    try:
                        text = out.opts.html(text)
                    except Exception as exc:  # an extractor bug must not lose the page: keep every text block
                        obj["html_extractor_error"] = f"{type(exc).__name__}: {exc}"[:200]
                        text = HtmlExtractor("plain", out.opts.keep_title)(text)
                    if not text.strip():
                        detail = f"the {out.opts.html_extractor} extractor found no main text in the page"
                        yield out.reject("empty_text", detail, body, rec_no, offset)
                        continue
            else:  # WET conversions are UTF-8 by definition, unless the record says otherwise
                label = charset_param(ctype)
                codec = codec_for(label) if label else "utf-8"
                try:
                    text = body.decode(codec or "utf-8")
                except UnicodeDecodeError as exc:
                    detail = f"body is not valid {codec}: {exc}"
                    yield out.reject("invalid_utf8", detail, body, rec_no, offset)
                    continue
            obj["text"] = text
            if arc:
                obj["archive_format"] = "arc"
            lang = h.get_header("WARC-Identified-Content-Language")
            if lang:
                obj["warc_language"] = lang
            yield out.record(obj, body[:1024], rec_no, offset, mapped=False)
    except _Broken as exc:
        yield out.unreadable(f"archive stream broken after record {rec_no}: {exc}", rec_no + 1)


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
        yield out.unreadable(f"read failed: {type(exc).__name__}: {exc}")
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
