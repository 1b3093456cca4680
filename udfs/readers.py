"""Raw record readers that run on executors, one input split per call.

Every data record a reader meets becomes exactly one row: an accepted document or a reject with its
reason, file and position. Records that hold no document (WARC ``warcinfo``, ``request``, ``metadata``,
``resource``, ``revisit``, the WAT ``metadata`` records, non-text responses) are counted by type instead. A
final ``file`` row per split carries how many rows the split produced, the skipped records by type and how
often each mapped field path missed, so the driver can reconcile what it publishes against what was read.
Reading streams: memory per task is bounded by the largest record allowed (``line_limit``) and a batch of
rows, never by the file size.

JSONL and Parquet are read here, WARC/ARC by ``udfs.readers_warc``; splits, options, opening files and
building result rows are ``udfs.splits``.
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Iterable, Iterator

import pyarrow as pa

from schemas.ingest import PARSED_SCHEMA
from udfs.readers_warc import read_warc
from udfs.splits import (
    ReaderOptions,
    Split,
    SplitRows,
    compression,
    content_codec,
    json_document_name,
    open_decompressed,
    open_input,
)

_BOM = codecs.BOM_UTF8


def _starts_with_array(split: Split) -> bool:
    """A ``.json`` file whose first character (after a BOM and whitespace) is ``[``: one JSON array."""
    if not json_document_name(split.uri):
        return False
    with open_decompressed(split.uri) as fh:
        head = fh.read(1 << 16).removeprefix(_BOM).lstrip()
        while not head:  # a long run of leading whitespace
            chunk = fh.read(1 << 16)
            if not chunk:
                return False
            head = chunk.lstrip()
    return head.startswith(b"[")


def _read_json_array(split: Split, out: SplitRows) -> Iterator[dict]:
    """A ``.json`` file holding one array of records (``to_json(orient="records")``, a REST export): each
    item is a record, numbered from 1 by its position in the array. Unlike JSON lines it must be parsed
    whole, so it is refused above ``ingest.max_json_array_bytes``; a file the size of a crawl shard belongs in
    JSON lines. A plain file split in byte ranges is read by its first split only."""
    out.lines = 0
    if split.start:
        return
    limit = out.opts.array_limit
    with open_decompressed(split.uri) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        yield out.unreadable(
            f"a JSON array file over max_json_array_bytes={limit} (it is parsed whole); convert it to JSON "
            "lines, e.g. jq -c '.[]' file.json > file.jsonl, or raise the limit"
        )
        return
    try:
        items = json.loads(data.removeprefix(_BOM).decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield out.unreadable(f"a JSON array file that is not UTF-8: byte {exc.start}: {exc.reason}")
        return
    except (json.JSONDecodeError, RecursionError) as exc:
        yield out.unreadable(f"a JSON array file that does not parse: {exc}")
        return
    for i, item in enumerate(items, 1):
        out.lines = i
        if isinstance(item, dict):
            yield out.record(item, item, i)
        else:
            yield out.reject("not_an_object", f"a JSON {type(item).__name__}, not an object", item, i)


def _read_jsonl(split: Split, out: SplitRows) -> Iterator[dict]:
    if _starts_with_array(split):
        yield from _read_json_array(split, out)
        return
    limit = out.opts.line_limit
    ranged = compression(split.uri) is None and (split.start or split.end is not None)
    if ranged and content_codec(split.uri) is not None:
        # Compressed data under a plain name, cut into byte ranges by its size: the file's first split
        # reads all of it (decompressed), the others nothing.
        if split.start:
            return
        ranged = False
    if ranged:
        fh = io.BufferedReader(open_input(split.uri, seekable=True), 1 << 20)
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
    end = split.end if ranged else None
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
            if offset == 0 and line.startswith(_BOM):  # a byte-order mark (Windows tools) is not the record's
                line = line[len(_BOM) :]
            if line.isspace():  # blank lines are not records (they still count as lines); no copy as strip()
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


def _read_parquet(split: Split, out: SplitRows) -> Iterator[dict]:
    """A Parquet file, or in a byte range of it the row groups that start there (as Spark and Hadoop split
    Parquet): a large file is read by several tasks, each row group by exactly one. Record numbers are the
    rows' positions in the whole file, from the row counts in the footer."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(open_input(split.uri, seekable=True))
        groups, row_no = _row_groups(pf.metadata, split)
        batches = pf.iter_batches(batch_size=1024, row_groups=groups)
    except Exception as exc:  # not a Parquet file, truncated footer, …
        if not split.start:  # one reject per file, from its first split
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
            rows = _utf8_fields(batch, split).to_pylist()
        except Exception:  # invalid UTF-8 in a string column: find the rows it is in
            rows = []
            for i in range(batch.num_rows):
                try:
                    rows.append(_utf8_fields(batch.slice(i, 1), split).to_pylist()[0])
                except Exception as exc:
                    rows.append(exc)
        for obj in rows:
            row_no += 1
            if isinstance(obj, Exception):
                yield out.reject("invalid_utf8", f"row is not valid UTF-8: {obj}", None, row_no)
            else:
                yield out.record(obj, obj, row_no)


def _row_groups(meta, split: Split) -> tuple[list[int] | None, int]:
    """The row groups a split reads (None: all of them) and the rows of the file before the first one.

    A row group belongs to the split whose byte range holds its first byte (the first page of its first
    column chunk), so the splits of a file share its row groups out with none read twice or left over.
    """
    if not split.start and split.end is None:
        return None, 0
    groups, before = [], 0
    for i in range(meta.num_row_groups):
        rg = meta.row_group(i)
        chunks = [rg.column(c) for c in range(rg.num_columns)]
        first = min(
            c.dictionary_page_offset
            if c.has_dictionary_page and c.dictionary_page_offset
            else c.data_page_offset
            for c in chunks
        )
        if first < split.start:
            before += rg.num_rows
        elif split.end is None or first < split.end:
            groups.append(i)
    return groups, before


def _utf8_fields(batch, split: Split):
    """``batch`` with the binary columns that hold a mapped field (text, url, id) read as UTF-8 strings.

    Parquet writers that predate or skip the UTF8 annotation store strings as plain BINARY (Spark reads
    those with ``spark.sql.parquet.binaryAsString``); as bytes, every row would be a ``non_string_text``
    reject. Other binary columns stay bytes. Raises ``ArrowInvalid`` on bytes that are not UTF-8.
    """
    import pyarrow as pa

    paths = [p for p in (split.text_field, split.url_field, split.id_field) if p]
    names = set(paths) | {p.split(".")[0] for p in paths}
    for i, f in enumerate(batch.schema):
        if f.name in names and (pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)):
            to = pa.large_string() if pa.types.is_large_binary(f.type) else pa.string()
            batch = batch.set_column(i, f.name, batch.column(i).cast(to))
    return batch


_READERS = {"jsonl": _read_jsonl, "parquet": _read_parquet, "warc": read_warc}


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
    out = SplitRows(split, opts)
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
