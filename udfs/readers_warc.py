"""The WARC reader: WARC, WET and WAT files and the older ARC format, as warcio reads them, plain or gzipped
(one gzip member per record, or one stream for the whole file). Responses with HTML become text through
the configured extractor after charset detection; WET conversions are taken as they are.
"""

from __future__ import annotations

import gzip
import io
import uuid
import zlib
from collections.abc import Iterator

from udfs.charset import charset_param, codec_for, decode_html
from udfs.splits import Split, SplitRows, open_input
from udfs.text import HtmlExtractor

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
        self._gz = gzip.GzipFile(fileobj=open_input(uri))

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
            stream = _Gunzipped(uri) if one_stream else open_input(uri)
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


def read_warc(split: Split, out: SplitRows) -> Iterator[dict]:
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
