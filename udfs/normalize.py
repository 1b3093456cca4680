"""Text normalization for the clean stage: what every later rule, hash and model sees.

Steps, in order: stray HTML tags removed and entities decoded (web extractions leak both), Unicode NFC,
control and invisible characters removed (zero-width spaces, BOMs, soft hyphens, bidi marks), spaces and
tabs collapsed within lines, trailing spaces dropped, runs of blank lines collapsed to one, ends stripped.
Newlines are kept: line-based quality rules need them.
"""

from __future__ import annotations

import html
import re
import unicodedata

# Tags only when they look like markup (<p>, </div>, <br/>, <a href=…>), so "a < b > c" survives.
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]{0,500})?/?>")
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_INVISIBLE = {
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00ad",
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
}
_SPACES = re.compile(r"[ \t\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_BLANKS = re.compile(r"\n\s*\n+")


def _keep(ch: str) -> bool:
    if ch in "\n\t":
        return True
    if ch in _INVISIBLE:
        return False
    cat = unicodedata.category(ch)
    # Cc control, Cf format (invisible), Cs surrogates, Co private use, Cn unassigned.
    return not cat.startswith("C")


def normalize(text: str) -> str:
    """The normalized form of a document's text (see the module docstring for the steps).

    Args:
        text: raw document text.

    Returns:
        Normalized text; empty if nothing visible is left.
    """
    if "<" in text:
        text = _TAG.sub(" ", _COMMENT.sub(" ", text))
    if "&" in text:
        text = html.unescape(text)
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    if not text.isprintable():
        # Newlines alone make a text "not printable": judge each distinct character once, not each character.
        drop = {ord(ch): None for ch in set(text) if not _keep(ch)}
        if drop:
            text = text.translate(drop)
    else:
        text = (
            "".join(ch for ch in text if ch not in _INVISIBLE) if any(c in text for c in _INVISIBLE) else text
        )
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()
