"""URL and domain blocklists (the clean stage's first step): documents whose URL is on a list are dropped as
``blocklist:<category>`` before any other work is spent on them.

Lists come in the formats people have:

* ``domains``: one domain per line (``#`` comments and blank lines skipped; hosts-file lines
  ``0.0.0.0 host`` and ``127.0.0.1 host`` give their host). An entry blocks that host and its subdomains: a
  document matches when its host, or any parent of it down to its registered domain, is listed. The
  registered domain is bronze's ``domain`` (tldextract's bundled public-suffix list, no network), so a public
  suffix (``co.uk``) on a list blocks nothing;
* ``urls``: one URL per line; it blocks that URL and every URL below it (``example.com/a`` blocks
  ``https://www.example.com/a/b?c=1`` but not ``example.com/ab``). Both sides are compared lower-cased,
  without scheme, ``www.``, fragment or trailing ``/``;
* ``url_substrings``: text that blocks any URL containing it (lower-cased);
* ``ut1``: a folder in the layout of the Université Toulouse 1 Capitole lists, ``<category>/domains`` and
  ``<category>/urls`` (its ``expressions`` and ``usage`` files are not read).

A document on several lists takes one reason: a URL match before a domain match before a substring match,
then the smallest category name. Each file is read once per run, on the driver (its sha256 from the same
bytes, so what was hashed is what was applied); the domain and URL entries become one cached table that is
broadcast to a hash join against each document's keys (driver memory grows with the lists, never with the
documents), and the substrings, usually a few hundred, become one Java regex per category. Every file's size
and sha256 go to audit.runs.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.runtime import UsageError, list_files

KINDS = ("url", "domain", "url_substring")  # match precedence
UT1_FILES = {"domains": "domain", "urls": "url"}
FORMAT_KIND = {"domains": "domain", "urls": "url", "url_substrings": "url_substring"}
MAX_SUBSTRINGS = 10_000  # each becomes part of a regex every task runs over every URL
MAX_URL_SEGMENTS = 64  # path prefixes tried per URL
AUDIT_PREFIX = "blocklist:"

_SCHEME = r"^[a-z][a-z0-9+.-]*://"
_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]+)"


@dataclass(frozen=True)
class ListFile:
    """One list file as a run read it."""

    uri: str
    kind: str  # KINDS
    category: str
    size: int
    sha256: str

    def audit_entry(self) -> str:
        """Its audit.runs ``inputs`` entry: ``blocklist:<uri>|<size>|sha256:<hex>``."""
        return f"{AUDIT_PREFIX}{self.uri}|{self.size}|sha256:{self.sha256}"


@dataclass
class Blocklists:
    """The lists of one run: the files, the domain and URL entries (``entry, category, kind, source``) and
    the substrings per category."""

    files: list[ListFile]
    entries: DataFrame | None
    substrings: dict[str, list[str]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (category, kind) → entries

    def unpersist(self) -> None:
        if self.entries is not None:
            self.entries.unpersist()


def check_paths(lists: list, key: str = "clean.blocklist.lists") -> None:
    """Before Spark starts: every local list path exists (a folder for ut1, a file otherwise).

    Raises:
        UsageError: naming the profile key, e.g. ``clean.blocklist.lists[1].path: no such file: …``.
    """
    for i, spec in enumerate(lists):
        if "://" in spec.path:
            continue
        want_dir = spec.format == "ut1"
        ok = os.path.isdir(spec.path) if want_dir else os.path.isfile(spec.path)
        if not ok:
            what = "folder (ut1: <category>/domains, <category>/urls)" if want_dir else "file"
            raise UsageError(f"{key}[{i}].path: no such {what}: {spec.path}")


def resolve(lists: list, key: str = "clean.blocklist.lists") -> list[tuple[str, str, str, int]]:
    """The files the lists name: ``(uri, kind, category, size)``, UT1 folders expanded, in conf order.

    Raises:
        UsageError: a ut1 folder without categories, or without a category the conf names.
    """
    out = []
    for i, spec in enumerate(lists):
        if spec.format != "ut1":
            files = list_files(spec.path)
            if not files:
                raise UsageError(f"{key}[{i}].path: no such file: {spec.path}")
            for uri, size, _ in files:
                category = spec.category or Path(uri).name.split(".", 1)[0]
                out.append((uri, FORMAT_KIND[spec.format], category, size))
            continue
        root = spec.path.rstrip("/")
        found: dict[str, list] = {}
        for name, kind in UT1_FILES.items():
            for uri, size, _ in list_files(f"{root}/*/{name}"):
                found.setdefault(Path(uri).parent.name, []).append((uri, kind, size))
        if not found:
            raise UsageError(f"{key}[{i}].path: no <category>/domains or <category>/urls under {spec.path}")
        wanted = spec.categories if spec.categories is not None else sorted(found)
        missing = [c for c in wanted if c not in found]
        if missing:
            raise UsageError(
                f"{key}[{i}].categories: {', '.join(missing)} not under {spec.path} "
                f"(it has {', '.join(sorted(found))})"
            )
        for category in wanted:
            for uri, kind, size in sorted(found[category]):
                out.append((uri, kind, category, size))
    return out


_HOSTS_FILE = re.compile(r"^(?:0\.0\.0\.0|127\.0\.0\.1)\s+")
_SCHEME_RE = re.compile(_SCHEME)


def domain_entry(line: str) -> str:
    """A domain-list line as the key it blocks (``''`` for comments, blanks and junk)."""
    s = line.strip().lower()
    if not s or s.startswith("#"):
        return ""
    s = _SCHEME_RE.sub("", _HOSTS_FILE.sub("", s))
    s = re.split(r"[/:?#\s]", s, maxsplit=1)[0]  # a URL or a trailing comment on a domain list: its host
    return re.sub(r"^(?:\*\.|\.)+", "", s).rstrip(".")


def url_entry(line: str) -> str:
    """A URL-list line as the key it blocks, normalized as ``url_keys`` normalizes document URLs."""
    s = line.strip().lower()
    if not s or s.startswith("#"):
        return ""
    s = re.sub(r"^[^@/?#]*@", "", _SCHEME_RE.sub("", s))
    s = re.sub(r"^www\.", "", s)
    return s.split("#", 1)[0].rstrip("/")


def _read_file(uri: str) -> tuple[str, list[str]]:
    """sha256 of the file's bytes and its lines, from one read."""
    if "://" in uri:
        import pyarrow.fs as pafs

        fs, path = pafs.FileSystem.from_uri(uri.replace("s3a://", "s3://", 1))
        with fs.open_input_stream(path) as fh:
            data = fh.read()
    else:
        with open(uri, "rb") as fh:
            data = fh.read()
    return hashlib.sha256(data).hexdigest(), data.decode("utf-8", errors="replace").splitlines()


def read(spark: SparkSession, lists: list, key: str = "clean.blocklist.lists") -> Blocklists:
    """Read every list once, on the driver: each file's sha256 and its entries from the same bytes. The
    domain and URL entries become one cached DataFrame (made from Arrow, so a list of millions of domains
    takes seconds) that ``mark`` broadcasts; the substrings stay Python strings.

    Args:
        spark: the session.
        lists: the ``clean.blocklist.lists`` entries.
        key: their profile key, for errors.

    Raises:
        UsageError: a path matches nothing, a ut1 category is missing, or the substrings pass
            ``MAX_SUBSTRINGS``.
    """
    import pyarrow as pa

    files: list[ListFile] = []
    cols: dict[str, list[str]] = {"entry": [], "category": [], "kind": [], "source": []}
    substrings: dict[str, set[str]] = {}
    for uri, kind, category, size in resolve(lists, key):
        digest, lines = _read_file(uri)
        files.append(ListFile(uri, kind, category, size, digest))
        if kind == "url_substring":
            subs = {s for s in (x.strip().lower() for x in lines) if s and not s.startswith("#")}
            substrings.setdefault(category, set()).update(subs)
            continue
        norm = domain_entry if kind == "domain" else url_entry
        entries = {e for e in map(norm, lines) if e}
        cols["entry"] += sorted(entries)
        cols["category"] += [category] * len(entries)
        cols["kind"] += [kind] * len(entries)
        cols["source"] += [uri] * len(entries)
    n_sub = sum(len(v) for v in substrings.values())
    if n_sub > MAX_SUBSTRINGS:
        raise UsageError(
            f"{key}: {n_sub:,} URL substrings, more than the {MAX_SUBSTRINGS:,} matched as regexes in every "
            "task; put whole domains or URLs on domains/urls lists instead"
        )
    counts: dict[tuple[str, str], int] = {}
    for category, kind in zip(cols["category"], cols["kind"], strict=True):
        counts[(category, kind)] = counts.get((category, kind), 0) + 1
    for category, subs in substrings.items():
        counts[(category, "url_substring")] = len(subs)
    entries = None
    if cols["entry"]:
        table = pa.table({k: pa.array(v, pa.string()) for k, v in cols.items()})
        entries = spark.createDataFrame(table).dropDuplicates(["entry", "category", "kind"]).persist()
    return Blocklists(files, entries, {c: sorted(v) for c, v in sorted(substrings.items())}, counts)


def _java_literal(s: str) -> str:
    """``s`` as a Java regex matching it literally (a backslash before every ASCII non-alphanumeric)."""
    return re.sub(r"([\x00-\x2f\x3a-\x40\x5b-\x60\x7b-\x7f])", r"\\\1", s)


def domain_keys() -> F.Column:
    """The host and its parents down to the registered domain (bronze ``domain``), as an array."""
    host = F.regexp_replace(F.lower(F.regexp_extract(F.col("url"), _HOST, 1)), r"\.+$", "")
    labels = F.split(host, r"\.")
    n = F.size(labels)
    dom = F.lower(F.col("domain"))
    under = dom.isNotNull() & ((host == dom) | host.endswith(F.concat(F.lit("."), dom)))
    k = F.when(under, F.size(F.split(dom, r"\."))).otherwise(n)
    parents = F.transform(
        F.sequence(F.lit(1), n - k + 1), lambda i: F.array_join(F.slice(labels, i, n - i + 1), ".")
    )
    return (
        F.when(host != "", parents)
        .when(dom.isNotNull(), F.array(dom))
        .otherwise(F.array().cast("array<string>"))
    )


def _url_key(url: F.Column) -> F.Column:
    """A URL (lower-cased, scheme stripped) as ``url_entry`` normalizes list lines."""
    u = F.regexp_replace(url, r"^[^@/?#]*@", "")
    u = F.regexp_replace(u, r"^www\.", "")
    u = F.regexp_replace(u, r"#.*$", "")
    return F.regexp_replace(u, r"/+$", "")


def url_keys() -> F.Column:
    """The URL (see ``_url_key``) and its prefixes at each ``/`` of the path, as an array."""
    full = _url_key(F.regexp_replace(F.lower(F.col("url")), _SCHEME, ""))
    segments = F.split(F.split(full, r"\?").getItem(0), "/")
    n = F.least(F.size(segments), F.lit(MAX_URL_SEGMENTS))
    prefixes = F.transform(
        F.sequence(F.lit(1), n),
        lambda i: F.regexp_replace(F.array_join(F.slice(segments, 1, i), "/"), "/+$", ""),
    )
    return F.when(F.col("url").isNull() | (full == ""), F.array().cast("array<string>")).otherwise(
        F.array_distinct(F.concat(prefixes, F.array(full)))
    )


def mark(lists: Blocklists) -> Callable[[DataFrame], DataFrame]:
    """Documents (with ``doc_id``, ``url``, ``domain``) and, beside each, ``block_reason``
    (``blocklist:<category>``, null when no list matches), ``block_value`` (entries matched) and
    ``block_detail`` (the match that decided: ``domain x.com``, ``url x.com/a``, ``url contains 'x'``)."""

    def transform(docs: DataFrame) -> DataFrame:
        matches = []
        if lists.entries is not None:
            table = F.broadcast(lists.entries)
            for kind, keys in (("domain", domain_keys()), ("url", url_keys())):
                cand = docs.select("doc_id", F.explode(keys).alias("entry"))
                hit = cand.join(table.filter(F.col("kind") == kind), "entry")
                matches.append(
                    hit.select(
                        "doc_id",
                        F.lit(KINDS.index(kind)).alias("rank"),
                        "category",
                        F.concat(F.lit(f"{kind} "), F.col("entry")).alias("detail"),
                    )
                )
        if lists.substrings:
            lowered = F.lower(F.col("url"))
            hits = F.array(
                *[
                    F.struct(
                        F.lit(category).alias("category"),
                        F.regexp_extract(lowered, "|".join(_java_literal(s) for s in subs), 0).alias("hit"),
                    )
                    for category, subs in sorted(lists.substrings.items())
                ]
            )
            sub = (
                docs.filter(F.col("url").isNotNull())
                .select("doc_id", F.explode(hits).alias("m"))
                .filter(F.col("m.hit") != "")
            )
            matches.append(
                sub.select(
                    "doc_id",
                    F.lit(KINDS.index("url_substring")).alias("rank"),
                    F.col("m.category").alias("category"),
                    F.concat(F.lit("url contains '"), F.col("m.hit"), F.lit("'")).alias("detail"),
                )
            )
        if not matches:
            return docs.select(
                "*",
                F.lit(None).cast("string").alias("block_reason"),
                F.lit(None).cast("double").alias("block_value"),
                F.lit(None).cast("string").alias("block_detail"),
            )
        found = matches[0]
        for m in matches[1:]:
            found = found.unionByName(m)
        best = found.groupBy("doc_id").agg(
            F.min(F.struct("rank", "category", "detail")).alias("b"), F.count("*").alias("n")
        )
        return docs.join(best, "doc_id", "left").select(
            *[F.col(c) for c in docs.columns],
            F.when(F.col("b").isNotNull(), F.concat(F.lit("blocklist:"), F.col("b.category"))).alias(
                "block_reason"
            ),
            F.col("n").cast("double").alias("block_value"),
            F.col("b.detail").alias("block_detail"),
        )

    return transform


def summary(lists: Blocklists) -> list[str]:
    """The clean summary's lines about the lists: entries per category and kind, then each file."""
    by_cat: dict[str, list[str]] = {}
    for (category, kind), n in sorted(lists.counts.items()):
        by_cat.setdefault(category, []).append(f"{n:,} {kind.replace('_', ' ')}s")
    lines = [
        f"  blocklist: {len(lists.files)} files; "
        + "; ".join(f"{c} {', '.join(parts)}" for c, parts in by_cat.items())
    ]
    for f in lists.files:
        lines.append(
            f"    {f.category:<12} {f.kind:<13} {f.size:>10,} bytes  sha256 {f.sha256[:16]}  {f.uri}"
        )
    return lines
