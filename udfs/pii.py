"""PII detection and redaction for one document at a time: e-mail addresses, phone numbers, IPv4 and IPv6
addresses. Pure Python, no Spark: ``jobs.methods.pii.redact`` runs ``Redactor`` on each Arrow batch with
``mapInPandas``.

The patterns are the ones the public curation pipelines use, with their false-positive guards:

* ``email``: datatrove's ``PIIFormatter`` pattern (RFC 5322 local part, dotted domain or a bracketed IP
  literal), matched case-insensitively (datatrove's character classes are lower-case only, so it misses
  ``Jane.Doe@Example.org``), and the top-level label must be letters and no image or code file extension
  (``icon@2x.png`` is a file name);
* ``phone``: Dolma's pattern (North American 3-3-4 digits after whitespace:
  ``(415) 555-0132``, ``415.555.0132``), not followed by another digit; ``international`` adds ``+``-prefixed
  numbers of 8-15 digits (``+44 20 7946 0958``);
* ``ipv4``: datatrove's and Dolma's pattern, not inside a longer dotted number (``1.3.6.1.4.1``);
* ``ipv6``: BigScience/BigCode's pattern (full and ``::``-compressed forms, IPv4-mapped), not touching a word
  character or colon (``std::vector``, ``12:30:45``).

Guards, after the pattern matched:

* IP addresses count only when public, as datatrove's ``only_remove_public_ips`` (Python's ``ipaddress``:
  not private, loopback, link-local, shared, documentation or reserved ranges, not multicast; IPv6 inside
  global unicast ``2000::/3``), and only when ``ipaddress`` parses them (``01.02.03.04`` is no address);
* version strings (BigCode): four single digits (``1.2.3.4``) are a version unless ``dns`` or ``server`` is
  within 100 characters, and an address right after ``version``, ``ver``, ``release`` or ``build`` is one;
* dates (BigCode's year patterns): a match that reads as a date (``2023-10-15``, ``15.10.2023``,
  ``1999-2000``) is none;
* Dolma's context guard: no phone number or IPv4 address within 100 characters of ``isbn`` or ``doi``
  (Dolma also skips any with a ``#`` nearby; that drops too many real ones in forum text).

Overlapping matches keep the longest (an IPv4 inside an IPv6 or e-mail literal counts once, as the outer).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import pandas as pd

TYPES = ("email", "phone", "ipv4", "ipv6")
ACTIONS = ("mask", "drop_document", "flag")
# Dolma's replacement tokens (its web pipeline masks with them).
PLACEHOLDERS = {
    "email": "|||EMAIL_ADDRESS|||",
    "phone": "|||PHONE_NUMBER|||",
    "ipv4": "|||IP_ADDRESS|||",
    "ipv6": "|||IP_ADDRESS|||",
}
PHONE_FORMATS = ("nanp", "international")
CONTEXT = 100  # characters either side that the context guards read (Dolma's and BigCode's window)

_LOCAL = r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
EMAIL_RE = re.compile(
    rf"\b{_LOCAL}@(?:(?:{_LABEL}\.)+{_LABEL}|\[(?:{_OCTET}\.){{3}}(?:{_OCTET}|[a-z0-9-]*[a-z0-9]:)\])",
    re.IGNORECASE,
)
PHONE_RE = {
    "nanp": re.compile(r"(?<!\S)\(?\d{3}\)?[-. ]*\d{3}[-. ]?\d{4}(?!\d)"),
    "international": re.compile(r"(?<!\S)\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?!\d)"),
}
IPV4_RE = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?!\w|\.\d)")
_H = r"[0-9a-f]{1,4}"
_V4 = r"(?:(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])\.){3}(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])"
_IPV6 = "|".join(
    [
        rf"(?:{_H}:){{7}}{_H}",
        rf"(?:{_H}:){{1,7}}:",
        rf"(?:{_H}:){{1,6}}:{_H}",
        rf"(?:{_H}:){{1,5}}(?::{_H}){{1,2}}",
        rf"(?:{_H}:){{1,4}}(?::{_H}){{1,3}}",
        rf"(?:{_H}:){{1,3}}(?::{_H}){{1,4}}",
        rf"(?:{_H}:){{1,2}}(?::{_H}){{1,5}}",
        rf"{_H}:(?::{_H}){{1,6}}",
        rf":(?:(?::{_H}){{1,7}}|:)",
        rf"::(?:ffff(?::0{{1,4}})?:)?{_V4}",
        rf"(?:{_H}:){{1,4}}:{_V4}",
    ]
)
IPV6_RE = re.compile(rf"(?<![\w:])(?:{_IPV6})(?![\w:])", re.IGNORECASE)

# BigCode's date patterns (yyyy-yyyy, yyyy-mm-dd, dd.mm.yyyy, mm/yyyy, yyyy-mm), anchored on the whole match.
_DATE_RE = re.compile(
    r"^(?:[12][0-9]{3}[-/][12][0-9]{3}"
    r"|[12][0-9]{3}[-/.][0-3][0-9][-/.][0-3][0-9]"
    r"|[0-3][0-9][-/.][0-3][0-9][-/.](?:[0-9]{2}|[12][0-9]{3})"
    r"|[0-3][0-9][-/](?:[0-9]{2}|[12][0-9]{3})"
    r"|[12][0-9]{3}-[0-3][0-9])$"
)
_VERSION_BEFORE = re.compile(r"\b(?:version|ver|release|build)\.?\s*[:#]?\s*v?$", re.IGNORECASE)
_FILE_TLDS = frozenset("png jpg jpeg gif svg webp bmp ico css js ts py json xml html htm pdf zip".split())
_IPV6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")


@dataclass(frozen=True)
class Span:
    """One PII match: its type and character offsets in the text."""

    type: str
    start: int
    end: int


class Detector(Protocol):
    """What ``Redactor`` needs from a detector: a name and ``find(text)``, the PII spans of one text.

    ``RegexDetector`` is the built-in one; a maintained NER detector (Presidio) would implement the same two
    members.
    """

    name: str

    def find(self, text: str) -> list[Span]: ...


def _context(text: str, start: int, end: int) -> str:
    return text[max(0, start - CONTEXT) : end + CONTEXT].lower()


def _is_date(s: str) -> bool:
    return _DATE_RE.match(s) is not None


def _public_ip(s: str) -> bool:
    try:
        ip = ipaddress.ip_address(s)
    except ValueError:  # leading zeros, out-of-range groups
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    return ip.version == 4 or ip in _IPV6_GLOBAL_UNICAST


def _is_version(text: str, start: int, end: int) -> bool:
    s = text[start:end]
    if _VERSION_BEFORE.search(text[max(0, start - 16) : start]):
        return True
    if len(s) == 7 and s.count(".") == 3:  # 1.2.3.4: a version unless the page talks about DNS or servers
        ctx = _context(text, start, end)
        return "dns" not in ctx and "server" not in ctx
    return False


def _near_isbn_or_doi(text: str, start: int, end: int) -> bool:
    ctx = _context(text, start, end)
    return "isbn" in ctx or "doi" in ctx


class RegexDetector:
    """E-mail, phone, IPv4 and IPv6 spans by pattern, with the guards in the module docstring.

    Args:
        types: the PII types to look for (``TYPES``).
        phone_formats: ``nanp`` (Dolma's) and/or ``international``.
        public_ips_only: count only public addresses (datatrove's default); False counts every address.
    """

    name = "regex"

    def __init__(
        self,
        types: Sequence[str] = TYPES,
        phone_formats: Sequence[str] = ("nanp",),
        public_ips_only: bool = True,
    ):
        self.types = tuple(t for t in TYPES if t in set(types))
        self.phones = [PHONE_RE[f] for f in PHONE_FORMATS if f in set(phone_formats)]
        self.public_ips_only = public_ips_only

    def _ip_ok(self, text: str, m: re.Match, v4: bool) -> bool:
        s = m.group(0)
        if self.public_ips_only:
            if not _public_ip(s):
                return False
        else:
            try:
                ipaddress.ip_address(s)
            except ValueError:
                return False
        if _is_date(s) or not any(c.isdigit() for c in s):
            return False
        if v4 and (_is_version(text, m.start(), m.end()) or _near_isbn_or_doi(text, m.start(), m.end())):
            return False
        return True

    def _candidates(self, text: str) -> list[Span]:
        spans: list[Span] = []
        # Cheap checks first: most documents hold no '@', and IPv6 needs '::' or seven colons.
        if "email" in self.types and "@" in text:
            for m in EMAIL_RE.finditer(text):
                tld = m.group(0).rsplit(".", 1)[-1].lower()
                if m.group(0).endswith("]") or (tld.isalpha() and len(tld) >= 2 and tld not in _FILE_TLDS):
                    spans.append(Span("email", m.start(), m.end()))
        has_digit = any(c.isdigit() for c in text)
        if "phone" in self.types and has_digit:
            for rx in self.phones:
                for m in rx.finditer(text):
                    s = m.group(0)
                    digits = sum(c.isdigit() for c in s)
                    if s.startswith("+") and not 8 <= digits <= 15:
                        continue
                    if _is_date(s) or _near_isbn_or_doi(text, m.start(), m.end()):
                        continue
                    spans.append(Span("phone", m.start(), m.end()))
        if "ipv4" in self.types and has_digit and "." in text:
            spans += [
                Span("ipv4", m.start(), m.end()) for m in IPV4_RE.finditer(text) if self._ip_ok(text, m, True)
            ]
        if "ipv6" in self.types and ("::" in text or text.count(":") >= 7):
            spans += [
                Span("ipv6", m.start(), m.end())
                for m in IPV6_RE.finditer(text)
                if self._ip_ok(text, m, False)
            ]
        return spans

    def find(self, text: str) -> list[Span]:
        """The PII spans of ``text``, in text order, none overlapping (the longest of overlapping ones wins;
        on equal length, ``TYPES`` order)."""
        spans = sorted(
            self._candidates(text), key=lambda s: (s.start, -(s.end - s.start), TYPES.index(s.type))
        )
        out: list[Span] = []
        for s in spans:
            if out and s.start < out[-1].end:
                if s.end - s.start > out[-1].end - out[-1].start:
                    out[-1] = s  # a longer match starting inside the previous one replaces it
                continue
            out.append(s)
        return out


@dataclass(frozen=True)
class TypeRule:
    """What happens to one PII type.

    Attributes:
        action: ``mask`` (replace with ``placeholder``), ``drop_document`` (drop the document when it holds
            more than ``max_count`` of this type; otherwise mask) or ``flag`` (count only; text unchanged).
        placeholder: the replacement text.
        max_count: ``drop_document``'s threshold.
    """

    action: str = "mask"
    placeholder: str = ""
    max_count: int = 0


# The columns ``Redactor`` adds beside each document (``jobs.methods.pii.FIELDS`` gives their Spark types).
COLUMNS = [
    *(f"pii_{t}" for t in TYPES),
    "pii_masked",
    "pii_flagged",
    "pii_drop_reason",
    "pii_drop_value",
    "pii_drop_detail",
]


class Redactor:
    """Counts each document's PII by type, decides its fate and masks what the rules say.

    Args:
        rules: ``TypeRule`` per type in ``TYPES`` (a type left out is not looked for).
        max_total: Dolma's document rule: more than this many spans of the masked and dropped types together
            drop the document (reason ``pii:total``); None turns it off.
        detector: finds the spans (default: ``RegexDetector`` over the ruled types).
    """

    name = "pii"

    def __init__(
        self,
        rules: Mapping[str, TypeRule],
        max_total: int | None = None,
        detector: Detector | None = None,
    ):
        unknown = set(rules) - set(TYPES)
        if unknown:
            raise ValueError(f"unknown PII types {sorted(unknown)}; known: {', '.join(TYPES)}")
        self.rules = {t: rules[t] for t in TYPES if t in rules}
        self.max_total = max_total
        self.detector = detector or RegexDetector(list(self.rules))

    def row(self, text: str) -> dict:
        """One document: its new text and the ``COLUMNS`` values."""
        spans = [s for s in self.detector.find(text) if s.type in self.rules]
        counts = {t: 0 for t in TYPES}
        for s in spans:
            counts[s.type] += 1
        out = {f"pii_{t}": counts[t] for t in TYPES}
        out["pii_flagged"] = [t for t, r in self.rules.items() if r.action == "flag" and counts[t]]
        drop = next(
            (
                (f"pii:{t}", counts[t], f"more than max_count {r.max_count} {t} matches (drop_document)")
                for t, r in self.rules.items()
                if r.action == "drop_document" and counts[t] > r.max_count
            ),
            None,
        )
        if drop is None and self.max_total is not None:
            total = sum(counts[t] for t, r in self.rules.items() if r.action != "flag")
            if total > self.max_total:
                drop = ("pii:total", total, f"more than max_total {self.max_total} matches of masked types")
        if drop is not None:
            reason, value, detail = drop
            out.update(text=text, pii_masked=0, pii_drop_reason=reason, pii_drop_value=float(value))
            out["pii_drop_detail"] = detail
            return out
        masked = [s for s in spans if self.rules[s.type].action != "flag"]
        parts, at = [], 0
        for s in masked:
            parts += [text[at : s.start], self.rules[s.type].placeholder]
            at = s.end
        parts.append(text[at:])
        out.update(text="".join(parts), pii_masked=len(masked), pii_drop_reason=None, pii_drop_value=None)
        out["pii_drop_detail"] = None
        return out

    def redact(self, texts: pd.Series) -> pd.DataFrame:
        """Each text's redacted ``text`` and ``COLUMNS``, one row per input row (by position)."""
        rows = [self.row(t) for t in texts]
        return pd.DataFrame(rows, columns=["text", *COLUMNS])

    def redact_messages(self, messages) -> list[dict] | None:
        """A chat record's messages with each content masked as its text is (None stays None).

        Each content is searched on its own: a match cannot span two messages. A document whose contents
        would be dropped as a whole is dropped by its text's verdict (its counts are at least the
        content's), so only the masks matter here.
        """
        if messages is None:
            return None
        return [{"role": m["role"], "content": self.row(m["content"])["text"]} for m in messages]

    def __call__(self, docs: pd.DataFrame, text_col: str = "text") -> pd.DataFrame:
        """``docs`` with ``text_col`` (and a chat record's ``messages``) redacted and ``COLUMNS`` beside
        each row."""
        got = self.redact(docs[text_col])
        out = docs.reset_index(drop=True).copy()
        if "messages" in out.columns:
            out["messages"] = [self.redact_messages(m) for m in out["messages"]]
        out[text_col] = got["text"]
        for c in COLUMNS:
            out[c] = got[c]
        return out
