"""Placement of the planned documents into the six web files, and the writers of each format.

JSONL (plain, gzip, zstd) with planted bad records, Parquet, a WET file and a WARC file of HTML responses,
and the instruction pool's chat JSONL; :class:`Writer` also records, per record, what ingest must accept or
reject.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import random
import re
import unicodedata
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from jobs.demo.instruct import chat_lines
from jobs.demo.layout import (
    CHAT_FILE,
    FILE_SHARES,
    GENERATOR_VERSION,
    JSONL_REJECTS,
    PARQUET_REJECTS,
    PQ,
    SOURCE_TAGS,
    W0,
    W1,
    W2,
    WARC,
    WEB_FILES,
    WET,
    WET_REJECTS,
)
from jobs.demo.planner import Doc
from jobs.demo.vocab import sentences


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    s = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return s[:60].rstrip("-") or "page"


def doc_url(doc: Doc) -> str:
    slug = _slug(doc.title)
    if doc.category == "forum":
        return f"https://{doc.host}/t/{slug}/{doc.key}"
    if doc.category == "code":
        return f"https://{doc.host}/snippets/{slug}-{doc.key}"
    if doc.category == "spam":
        return f"https://{doc.host}/?p={doc.key}&ref={slug[:12]}"
    return f"https://{doc.host}/{doc.day.year}/{doc.day.month:02d}/{slug}-{doc.key}"


def _warc_id(seed: int, file: str, k: int) -> str:
    digest = hashlib.sha256(f"corpuslake-sample:{seed}:{file}:{k}".encode()).digest()
    return f"<urn:uuid:{uuid.UUID(bytes=digest[:16], version=4)}>"


def place_docs(rng: random.Random, docs: list[Doc], groups: list[list[Doc]]) -> dict[str, list[Doc]]:
    """Assign documents to files, keeping every original ahead of its copies in global order."""
    n = len(docs)
    n_warc = round(FILE_SHARES[WARC] * n)
    warc_pool = [d for d in docs if not d.role and d.category in ("prose", "non_english", "short")]
    rng.shuffle(warc_pool)
    warc = warc_pool[:n_warc]
    for d in warc:
        d.role = "warc"
    rest = [d for d in docs if d.role != "warc"]
    rng.shuffle(rest)
    files = [W0, W1, W2, PQ, WET]
    total_share = sum(FILE_SHARES[f] for f in files)
    per_file: dict[str, list[Doc]] = {WARC: warc}
    start = 0
    for i, f in enumerate(files):
        cnt = len(rest) - start if i == len(files) - 1 else round(len(rest) * FILE_SHARES[f] / total_share)
        per_file[f] = rest[start : start + cnt]
        start += cnt
    # Global order = file-name order, then position.  Reassign slots inside each planted group so the
    # original precedes its copies (a first-wins deduplicator then keeps the original).
    slot = {}
    for f in WEB_FILES:
        for i, d in enumerate(per_file[f]):
            slot[id(d)] = (WEB_FILES.index(f), i)
    for group in groups:
        slots = sorted(slot[id(d)] for d in group)
        for d, s in zip(group, slots, strict=True):
            per_file[WEB_FILES[s[0]]][s[1]] = d
    return per_file


def _json_line(obj, ensure_ascii: bool = False) -> bytes:
    return json.dumps(obj, ensure_ascii=ensure_ascii).encode("utf-8")


def _doc_record(doc: Doc, tag: str) -> dict:
    rec = {"id": doc.doc_id, "url": doc.url, "text": doc.text, "date": doc.day.isoformat(), "source_tag": tag}
    if doc.lang_hint:
        rec["lang_hint"] = doc.lang
    return rec


def _reject_line(rng: random.Random, reason: str, rid: str, url: str, k: int, max_doc_bytes: int) -> bytes:
    """Raw bytes (without newline) of one planted bad JSONL record; ``k`` picks the variant."""
    meta = {"date": "2023-06-01", "source_tag": "cc-main-2024-10"}
    if reason == "malformed_json":
        variants = (
            f'{{"id": "{rid}", "text": "abc',
            f'{{"id": "{rid}", "url": "{url}", "text": "Half a record", "date": "2023-04-01"',
            f'{{"id": "{rid}", "text": "two strings" "glued together"}}',
            f'{{"id": "{rid}" "text": "missing comma between fields"}}',
        )
        return variants[k % len(variants)].encode()
    if reason == "not_an_object":
        variants = (
            _json_line([rid, "an array instead of an object"]),
            b"42",
            _json_line("just a bare string"),
        )
        return variants[k % len(variants)]
    if reason == "missing_text":
        variants = (
            {"id": rid, "url": url, "body": "The text sits under the wrong key.", **meta},
            {"id": rid, "url": url, **meta},
        )
        return _json_line(variants[k % len(variants)])
    if reason == "empty_text":
        return _json_line({"id": rid, "url": url, "text": ("", "   \n\t  ")[k % 2], **meta})
    if reason == "non_string_text":
        values = (12345, ["a list", "of strings"], {"body": "nested object"})
        return _json_line({"id": rid, "url": url, "text": values[k % len(values)], **meta})
    if reason == "invalid_utf8":
        bad = (b"Caf\xc3 cr\xe8me and \xff\xfe broken bytes", b"a lone continuation \x80 byte in the text")
        return (
            f'{{"id": "{rid}", "url": "{url}", "text": "'.encode()
            + bad[k % 2]
            + b'", "date": "2023-06-01", "source_tag": "cc-main-2024-10"}'
        )
    if reason == "too_large":
        chunk = []
        size = 0
        while size < max_doc_bytes + 50_000:
            para = " ".join(sentences(rng, "en", "history", 8))
            chunk.append(para)
            size += len(para.encode("utf-8")) + 2
        text = "\n\n".join(chunk).encode("utf-8")[: max_doc_bytes + 50_000].decode("utf-8", "ignore")
        return _json_line({"id": rid, "url": url, "text": text, **meta})
    raise ValueError(reason)


def _html_page(doc: Doc) -> bytes:
    blocks = doc.text.split("\n\n")
    if len(blocks) > 1 and blocks[0] == doc.title:
        blocks = blocks[1:]  # the headline goes to <title>; the body keeps every other block
    title = html.escape(doc.title, quote=False)
    paras = "\n".join(f"<p>{html.escape(b, quote=False)}</p>" for b in blocks)
    page = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title>"
        "<style>body { font-family: Georgia, serif; } .nav, .cookie-banner { display: none; }</style>"
        "<script>window.dataLayer = window.dataLayer || []; function track(e) { dataLayer.push(e); } "
        'var banner = "We use cookies. Accept all cookies?";</script>'
        f"</head><body>\n{paras}\n</body></html>\n"
    )
    return page.encode("utf-8")


class Writer:
    """Writes the raw files and collects per-record truth."""

    def __init__(self, out: Path, seed: int, rng: random.Random, max_doc_bytes: int):
        self.out = out
        self.seed = seed
        self.rng = rng
        self.max_doc_bytes = max_doc_bytes
        self.rejects: list[dict] = []
        self.records: dict[str, int] = {}
        self.accepted: list[Doc] = []
        # The instruction pool's accepted chat records (``id, family, format, record_number``).
        self.chat_docs: list[dict] = []
        self.chat_malformed: list[dict] = []
        base = datetime(2024, 1, 1) + timedelta(days=seed % 365)
        self.crawl_base = base

    def _warc_date(self, k: int) -> str:
        return (self.crawl_base + timedelta(seconds=37 * k)).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _reject(self, file: str, rn: int, reason: str) -> None:
        self.rejects.append({"file": file, "record_number": rn, "reason": reason})

    def _accept(self, doc: Doc, file: str, rn: int) -> None:
        doc.file, doc.record_number = file, rn
        if len(doc.text.encode("utf-8")) > self.max_doc_bytes:
            # Only possible with a tiny max_doc_bytes; keep truth consistent with the ingest rule.
            self._reject(file, rn, "too_large")
        else:
            self.accepted.append(doc)

    @staticmethod
    def _interleave(rng: random.Random, docs: list[Doc], bad: list[str], head: int = 0) -> list:
        """Insert bad-record markers at random positions (not before ``head`` docs)."""
        items: list = list(docs)
        for reason in bad:
            items.insert(rng.randint(min(head, len(items)), len(items)), reason)
        return items

    def plan_jsonl(self, per_file: dict[str, list[Doc]]) -> dict[str, list]:
        rng = self.rng
        layouts = {}
        for f in (W0, W1, W2):
            bad = [reason for ff, reason, cnt in JSONL_REJECTS if ff == f for _ in range(cnt)]
            rng.shuffle(bad)
            layouts[f] = self._interleave(rng, per_file[f], bad, head=3)
        return layouts

    def write_jsonl(self, layouts: dict[str, list], per_file: dict[str, list[Doc]]) -> None:
        rng = self.rng
        # Assign ids from line numbers first: duplicate-id records need ids of earlier files.
        for f in (W0, W1, W2):
            stem = Path(f).name.split(".")[0]
            for rn, item in enumerate(layouts[f], start=1):
                if isinstance(item, Doc):
                    item.doc_id = f"{stem}-{rn:06d}"
        variant: dict[str, int] = {}
        serial = 10_000_000
        for f, ensure_ascii in ((W0, False), (W1, False), (W2, True)):
            stem = Path(f).name.split(".")[0]
            prev = {W1: W0, W2: W1}.get(f)
            lines = []
            for rn, item in enumerate(layouts[f], start=1):
                if isinstance(item, Doc):
                    item.lang_hint = rng.random() < (0.6 if item.lang != "en" else 0.25)
                    tag = SOURCE_TAGS[f] if rng.random() < 0.9 else "manual-upload"
                    lines.append(_json_line(_doc_record(item, tag), ensure_ascii))
                    self._accept(item, f, rn)
                    continue
                reason = item
                k = variant.get(reason, 0)
                variant[reason] = k + 1
                serial += 1
                url = f"https://www.news-harbor.com/archive/item-{serial}"
                if reason == "duplicate_doc_id":
                    # Same source id as a document accepted from an earlier file: a re-crawl with new text.
                    accepted = {id(d) for d in self.accepted}
                    orig = rng.choice([d for d in per_file[prev] if id(d) in accepted])
                    text = " ".join(sentences(rng, "en", orig.topic, 3))
                    rec = {
                        "id": orig.doc_id,
                        "url": orig.url,
                        "text": text,
                        "date": "2024-02-02",
                        "source_tag": SOURCE_TAGS[f],
                    }
                    lines.append(_json_line(rec, ensure_ascii))
                    if len(text.encode("utf-8")) > self.max_doc_bytes:
                        reason = "too_large"  # the size check comes first (tiny max_doc_bytes only)
                else:
                    lines.append(_reject_line(rng, reason, f"{stem}-{rn:06d}", url, k, self.max_doc_bytes))
                self._reject(f, rn, reason)
            data = b"".join(line + b"\n" for line in lines)
            self.records[f] = len(lines)
            path = self.out / f
            if f.endswith(".gz"):
                data = gzip.compress(data, compresslevel=6, mtime=0)
            elif f.endswith(".zst"):
                data = zstandard.ZstdCompressor(level=10).compress(data)
            path.write_bytes(data)

    def write_chat(self, records: list) -> None:
        """The instruction pool (records from :func:`jobs.demo.instruct.make_instruct`), after every web
        file: it draws nothing from this writer's random stream, so the web files are the same without it."""
        data, self.chat_docs, self.chat_malformed = chat_lines(records)
        for bad in self.chat_malformed:
            self._reject(CHAT_FILE, bad["record_number"], "malformed_messages")
        (self.out / CHAT_FILE).write_bytes(data)
        self.records[CHAT_FILE] = len(records)

    def write_parquet(self, docs: list[Doc]) -> None:
        rng = self.rng
        bad = [reason for reason, cnt in PARQUET_REJECTS for _ in range(cnt)]
        items = self._interleave(rng, docs, bad, head=2)
        cols: dict[str, list] = {k: [] for k in ("id", "url", "text", "date", "source_tag", "lang_hint")}
        for rn, item in enumerate(items, start=1):
            rid = f"web-003-{rn:06d}"
            if isinstance(item, Doc):
                item.doc_id = rid
                item.lang_hint = rng.random() < 0.3
                rec = _doc_record(item, SOURCE_TAGS[PQ])
                self._accept(item, PQ, rn)
            else:
                rec = {
                    "id": rid,
                    "url": f"https://www.portal-landing.com/row/{rn}",
                    "text": None if item == "missing_text" else "",
                    "date": "2022-11-30",
                    "source_tag": SOURCE_TAGS[PQ],
                }
                self._reject(PQ, rn, item)
            for k in cols:
                cols[k].append(rec.get(k))
        schema = pa.schema([(k, pa.string()) for k in cols])
        table = pa.table(cols, schema=schema)
        pq.write_table(table, self.out / PQ, compression="snappy")
        self.records[PQ] = len(items)

    def write_wet(self, docs: list[Doc]) -> None:
        rng = self.rng
        bad = [reason for reason, cnt in WET_REJECTS for _ in range(cnt)]
        items = self._interleave(rng, docs, bad, head=1)
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        info = (
            b"Software-Info: corpuslake-sample-generator/" + GENERATOR_VERSION.encode() + b"\r\n"
            b"Extracted-Date: " + self._warc_date(0).encode() + b"\r\n"
            b"isPartOf: CC-MAIN-SAMPLE\r\noperator: corpuslake\r\n"
            b"description: Synthetic WET sample (plain text extracted from HTML)\r\n"
        )
        writer.write_record(
            writer.create_warc_record(
                "",
                "warcinfo",
                payload=io.BytesIO(info),
                length=len(info),
                warc_content_type="application/warc-fields",
                warc_headers_dict={
                    "WARC-Date": self._warc_date(0),
                    "WARC-Record-ID": _warc_id(self.seed, WET, 0),
                    "WARC-Filename": Path(WET).name,
                },
            )
        )
        iso3 = {"en": "eng", "de": "deu", "fr": "fra", "es": "spa"}
        for rn, item in enumerate(items, start=1):
            rid = _warc_id(self.seed, WET, rn)
            headers = {
                "WARC-Date": self._warc_date(rn),
                "WARC-Record-ID": rid,
                "WARC-Refers-To": _warc_id(self.seed, WET + "#response", rn),
            }
            if isinstance(item, Doc):
                item.doc_id = rid
                uri, body = item.url, item.text.encode("utf-8")
                headers["WARC-Identified-Content-Language"] = iso3[item.lang]
                self._accept(item, WET, rn)
            else:
                uri = f"https://www.citydirectory.com.au/listing/{rn}"
                # Latin-1 bytes in a body that claims to be UTF-8 text: a classic broken conversion.
                body = b"Caf\xe9 cr\xe8me br\xfbl\xe9e \xff\xfe" if item == "invalid_utf8" else b""
                self._reject(WET, rn, item)
            writer.write_record(
                writer.create_warc_record(
                    uri,
                    "conversion",
                    payload=io.BytesIO(body),
                    length=len(body),
                    warc_content_type="text/plain",
                    warc_headers_dict=headers,
                )
            )
        (self.out / WET).write_bytes(buf.getvalue())
        self.records[WET] = len(items)

    def write_warc(self, docs: list[Doc]) -> None:
        buf = io.BytesIO()
        writer = WARCWriter(buf, gzip=True)
        k = 0
        for rn, doc in enumerate(docs, start=1):
            k += 1
            rid = _warc_id(self.seed, WARC, k)
            doc.doc_id = rid
            body = _html_page(doc)
            http_date = (self.crawl_base + timedelta(seconds=37 * k)).strftime("%a, %d %b %Y %H:%M:%S GMT")
            http_headers = StatusAndHeaders(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(body))),
                    ("Date", http_date),
                    ("Server", "nginx"),
                ],
                protocol="HTTP/1.1",
            )
            writer.write_record(
                writer.create_warc_record(
                    doc.url,
                    "response",
                    payload=io.BytesIO(body),
                    length=len(body),
                    http_headers=http_headers,
                    warc_headers_dict={"WARC-Date": self._warc_date(k), "WARC-Record-ID": rid},
                )
            )
            self._accept(doc, WARC, rn)
            if rn == 1:
                # The matching request record: readers must skip it (not a data record).
                k += 1
                path = doc.url.split("/", 3)[3] if doc.url.count("/") >= 3 else ""
                req = StatusAndHeaders(
                    f"GET /{path} HTTP/1.1",
                    [
                        ("Host", doc.host),
                        ("User-Agent", "corpuslake-sample-crawler/1.0"),
                        ("Accept", "text/html"),
                    ],
                    is_http_request=True,
                )
                writer.write_record(
                    writer.create_warc_record(
                        doc.url,
                        "request",
                        payload=io.BytesIO(b""),
                        length=0,
                        http_headers=req,
                        warc_headers_dict={
                            "WARC-Date": self._warc_date(k),
                            "WARC-Record-ID": _warc_id(self.seed, WARC, k),
                            "WARC-Concurrent-To": rid,
                        },
                    )
                )
        (self.out / WARC).write_bytes(buf.getvalue())
        self.records[WARC] = len(docs)
