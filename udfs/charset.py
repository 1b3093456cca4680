"""Decoding crawled HTML: the charset a page declares, or the one its bytes show. Pure Python, no Spark.

The order follows the HTML standard's encoding sniffing, with a maintained detector as the last step: a
byte-order mark (unambiguous, so the standard lets it win even over the HTTP header), the HTTP
``Content-Type`` charset, a ``<meta charset>`` / ``<meta http-equiv="Content-Type">`` in the first
``META_SCAN_BYTES``, strict UTF-8, then charset-normalizer's guess. Labels are read as browsers read them
(``iso-8859-1`` and ``ascii`` mean windows-1252, ``gb2312`` and ``gbk`` mean gb18030).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

META_SCAN_BYTES = 2048

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# WHATWG Encoding Standard labels whose Python codec of the same name decodes differently.
_LABELS = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "windows-1252": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "euc-cn": "gb18030",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "big5": "big5hkscs",
    "utf8": "utf-8",
    "unicode-1-1-utf-8": "utf-8",
}
_META = re.compile(rb"<meta\b[^>]*?\bcharset\s*=\s*[\"']?\s*([A-Za-z0-9_.:+-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    """What ``decode_html`` found: the text (None if nothing decoded) and how it got there."""

    text: str | None
    charset: str | None  # Python's name of the codec that decoded it
    source: str | None  # bom | http | meta | default (valid UTF-8) | detected
    tried: tuple[str, ...]  # "codec (source)" for every charset tried, in order


def charset_param(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type value, lowercased; None if it has none."""
    for part in (content_type or "").split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.strip().lower() == "charset" and v.strip("\"' "):
            return v.strip("\"' ").lower()
    return None


def codec_for(label: str | None) -> str | None:
    """The Python codec a charset label means (as browsers read the label); None if unknown."""
    if not label:
        return None
    label = label.strip().lower()
    try:
        return codecs.lookup(_LABELS.get(label, label)).name
    except LookupError:
        return None


def meta_charset(body: bytes) -> str | None:
    """The charset label a ``<meta>`` tag declares in the first ``META_SCAN_BYTES`` bytes."""
    m = _META.search(body, 0, META_SCAN_BYTES)
    return m.group(1).decode("ascii").lower() if m else None


def _detect(body: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(body).best()
    return codec_for(best.encoding) if best is not None else None


def decode_html(body: bytes, header_charset: str | None) -> Decoded:
    """Decode an HTML payload with the first charset that decodes it strictly, in the standard's order.

    Args:
        body: the HTTP payload (already de-chunked and decompressed by the WARC reader).
        header_charset: the HTTP ``Content-Type`` charset label, if the header gives one.
    """
    tried: list[str] = []
    seen: set[str] = set()

    def attempt(codec: str | None, source: str, label: str | None = None) -> Decoded | None:
        if codec is None:
            if label:
                tried.append(f"{label} ({source}, unknown charset)")
            return None
        if codec in seen:
            return None
        seen.add(codec)
        tried.append(f"{codec} ({source})")
        try:
            text = body.decode(codec)
        except (UnicodeDecodeError, LookupError):
            return None
        return Decoded(text, codec, source, tuple(tried))

    for bom, codec in _BOMS:
        if body.startswith(bom):
            found = attempt(codec, "bom")
            if found:
                return found
            break
    found = attempt(codec_for(header_charset), "http", header_charset)
    if found:
        return found
    label = meta_charset(body)
    if label and label.startswith("utf-16"):
        label = "utf-8"  # a page that can declare it in ASCII is not UTF-16 (as the standard says)
    found = attempt(codec_for(label), "meta", label) or attempt("utf-8", "default")
    if found:
        return found
    detected = _detect(body)
    if detected is None:
        tried.append("charset-normalizer: no charset fits")
    elif detected in seen:
        tried.append(f"charset-normalizer: {detected}, tried above")
    else:
        found = attempt(detected, "detected")
        if found:
            return found
    return Decoded(None, None, None, tuple(tried))
