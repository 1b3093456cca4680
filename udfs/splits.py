"""What a reader works with, whatever the format: the split to read and the options (``Split``,
``ReaderOptions``), formats by file name, opening local or remote files with their codecs, field paths, and
``SplitRows``, which turns records into result rows (documents, rejects, the closing ``file`` row) and
counts them. The format readers are ``udfs.readers`` (JSONL, Parquet) and ``udfs.readers_warc``.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from schemas.ingest import PARSED_SCHEMA
from udfs.chat import MESSAGES_FIELD, SHAREGPT_FIELD, MalformedMessages, parse_messages, render_plain
from udfs.text import HtmlExtractor, doc_id, registered_domain

FORMATS = ("jsonl", "parquet", "warc")
# Codecs by file ending: what crawl dumps and dataset releases use (C4 and Dolma .json.gz, RedPajama and
# SlimPajama .jsonl.zst, Wikipedia-derived .bz2, .xz archives). All but gzip and zstd come with Python.
_CODECS = ((".gz", "gzip"), (".zst", "zstd"), (".zstd", "zstd"), (".bz2", "bz2"), (".xz", "xz"))
# A name's format after its codec ending is taken off. "warc" is everything warcio reads: WARC, WET and WAT
# (WARC files too) and the older ARC format; warcio reads plain and gzipped archives only.
_EXTENSIONS = (
    (".warc", "warc"),
    (".wet", "warc"),
    (".wat", "warc"),
    (".arc", "warc"),
    (".parquet", "parquet"),
    (".jsonl", "jsonl"),
    (".json", "jsonl"),
    (".ndjson", "jsonl"),
)


def _without_codec(path: str) -> tuple[str, str | None]:
    """The lower-cased name without its codec ending, and the codec (None for a plain file)."""
    name = path.lower()
    for ext, codec in _CODECS:
        if name.endswith(ext):
            return name.removesuffix(ext), codec
    return name, None


def detect_format(path: str) -> str | None:
    """The format of a file from its name, or None if the name says nothing we read."""
    name, codec = _without_codec(path)
    for ext, fmt in _EXTENSIONS:
        if name.endswith(ext):
            # A Parquet file compresses inside; warcio reads gzip only.
            ok = codec is None or (fmt == "jsonl") or (fmt == "warc" and codec == "gzip")
            return fmt if ok else None
    return None


def json_document_name(path: str) -> bool:
    """A ``.json`` name (plain or compressed): it may hold one JSON array of records instead of JSON lines."""
    return _without_codec(path)[0].endswith(".json")


def compression(path: str) -> str | None:
    """The codec from the file name's ending (``gzip``, ``zstd``, ``bz2``, ``xz``); None for a plain file."""
    return _without_codec(path)[1]


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
    array_limit: int = 268_435_456  # ingest.max_json_array_bytes

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


# meta's JSON: sorted keys, UTF-8 kept, anything else as its str(). Built once: json.dumps with arguments
# builds an encoder per call.
_META_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False, default=str)


_EMPTY = "text is empty or whitespace only"
# Every result row has every field of schemas.ingest.PARSED_SCHEMA; a row sets those of its kind.
_NULL_ROW = dict.fromkeys(f.name for f in PARSED_SCHEMA.fields)


class _BadField(ValueError):
    """An id or url field of a type that cannot be an id (a reject's detail)."""


def _id_value(value, name: str) -> str | None:
    """A source id or url as stored: a string, or None. An empty one is none: "" would give every such
    record the same doc_id / domain."""
    if value is None:
        return None
    if isinstance(value, str):
        return str(value) if value.strip() else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _BadField(f"{name!r} is {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _BadField(f"{name!r} is {value}")
    return str(value)


class SplitRows:
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
            **_NULL_ROW,
            "source": self.split.source,
            "source_file": self.split.uri,
            "split_start": self.split.start,
            "record_number": record_number,
            "byte_offset": byte_offset,
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
            if self.split.start and self.split.fmt == "jsonl":  # Parquet rows are numbered in the whole file
                where += f" (numbered from byte {self.split.start})"
        return self.reject("unreadable_file", f"{detail[:900]}; {where}", None, record_number, byte_offset)

    def skip(self, record_type: str) -> None:
        self.skipped[record_type] += 1

    def record(self, obj: dict, raw, record_number=None, byte_offset=None, mapped: bool = True) -> dict:
        """A mapped record → document row, or the reject that explains why it is not one.

        ``mapped``: the split's field map applies (JSONL, Parquet); WARC readers build ``obj`` themselves.
        This runs once per input record (about 270,000 times in a x100 ingest of the sample), so it avoids
        work a typical record does not need: no copy of the text to test it for whitespace, no encode of
        an ASCII text to count its bytes, and one prebuilt JSON encoder.
        """
        s, opts = self.split, self.opts
        text = self._field(obj, s.text_field, mapped)
        source_id = self._field(obj, s.id_field, mapped)
        url = self._field(obj, s.url_field, mapped)
        if mapped:
            self.mapped += 1
        chat_field = None
        if text is None and mapped and isinstance(obj, dict):
            # No text: a chat record if it has a message list (messages format, or ShareGPT's).
            chat_field = next((f for f in (MESSAGES_FIELD, SHAREGPT_FIELD) if obj.get(f) is not None), None)
        messages = None
        if chat_field is not None:
            try:
                messages = parse_messages(obj[chat_field], chat_field)
            except MalformedMessages as exc:
                return self.reject("malformed_messages", str(exc), raw, record_number, byte_offset)
            text = render_plain(messages)
        reason = self._text_problem(text)
        if reason is not None:
            return self.reject(*reason, raw, record_number, byte_offset)
        # An ASCII str is its own UTF-8 (and holds no surrogate): its length is its byte count.
        if text.isascii():
            n_bytes = len(text)
        else:
            try:
                n_bytes = len(text.encode("utf-8"))
            except UnicodeEncodeError as exc:  # lone surrogates from "\ud800"-style JSON escapes
                return self.reject(
                    "invalid_utf8",
                    f"text is not encodable as UTF-8: {exc.reason}",
                    raw,
                    record_number,
                    byte_offset,
                )
        if n_bytes > opts.max_doc_bytes:
            detail = f"text is {n_bytes} bytes, over max_doc_bytes={opts.max_doc_bytes}"
            return self.reject("too_large", detail, raw, record_number, byte_offset)
        if not text or text.isspace():  # `not text.strip()` without a copy of the text
            return self.reject("empty_text", _EMPTY, raw, record_number, byte_offset)
        try:
            source_id = _id_value(source_id, s.id_field)
            url = _id_value(url, s.url_field)
        except _BadField as exc:
            return self.reject("bad_field_type", str(exc), raw, record_number, byte_offset)
        meta = _without(obj, [p for p in (s.text_field, s.id_field, s.url_field, chat_field) if p])
        row = self._base(record_number, byte_offset)
        row.update(
            kind="doc",
            doc_id=doc_id(s.source, source_id, text, url),
            source_id=source_id,
            url=url,
            domain=registered_domain(url),
            text=text,
            format="text" if messages is None else "chat",
            messages=messages,
            n_bytes=n_bytes,
            meta=_META_JSON.encode(meta),
        )
        return row

    def _field(self, obj, path: str | None, mapped: bool):
        """The value at a mapped field path (None if unset or absent; an absent one counts as a miss)."""
        if not path:
            return None
        value = obj[path] if type(obj) is dict and path in obj else get_path(obj, path)
        if value is _MISSING:
            if mapped:
                self.misses[path] += 1
            return None
        return value

    def _text_problem(self, text) -> tuple[str, str] | None:
        """``(reason, detail)`` when the text field cannot be a document's text (missing, not a string)."""
        if text is None:
            return "missing_text", f"no {self.split.text_field!r} field (or it is null)"
        if not isinstance(text, str):
            return "non_string_text", f"{self.split.text_field!r} is {type(text).__name__}, not a string"
        return None

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


def open_input(uri: str, seekable: bool = False):
    """The file's raw bytes (no decompression): a stream, or a random-access file when ``seekable``."""
    import pyarrow.fs as pafs

    if "://" in uri:
        fs, path = pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))
    else:
        fs, path = pafs.LocalFileSystem(), uri
    # compression=None: pyarrow would otherwise decompress by extension, and we decide that ourselves.
    raw = fs.open_input_file(path) if seekable else fs.open_input_stream(path, compression=None)
    return raw


# Magic numbers of the codecs, for a file whose name does not say (gzip data saved as ``.jsonl``).
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"))


def sniff_codec(head: bytes) -> str | None:
    """The codec whose magic number ``head`` (a file's first 10 bytes) starts with, or None."""
    for magic, codec in _MAGIC:
        if head.startswith(magic):
            return codec
    # bz2: "BZh", the block size digit, then the magic of a block or of the end of the stream.
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"):
        return "bz2"
    return None


def content_codec(uri: str) -> str | None:
    """The codec a file's first bytes show (``sniff_codec``); one small read."""
    with open_input(uri) as fh:
        return sniff_codec(fh.read(10))


def open_decompressed(uri: str):
    """A binary stream of the file's content, decompressed by its name's codec; local or remote.

    A file whose name has no codec is decompressed by the magic number it starts with, so gzip data saved
    under a plain name is read as its records, not as bytes that are not UTF-8.
    """
    raw = open_input(uri)
    kind = compression(uri)
    if kind is None:
        raw = io.BufferedReader(raw, 1 << 20)
        kind = sniff_codec(raw.peek(10)[:10])
    # Small buffers on purpose: a truncated stream fails on the read that hits the damage, and every record
    # in the buffers before it is still delivered.
    if kind == "gzip":
        return gzip.GzipFile(fileobj=raw)
    if kind == "zstd":
        import zstandard

        return io.BufferedReader(
            zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True), 1 << 16
        )
    if kind == "bz2":  # multi-stream files (pbzip2, lbzip2) are read to the end
        import bz2

        return bz2.BZ2File(raw)
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(raw)
    return raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(raw, 1 << 20)
