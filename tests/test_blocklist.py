"""URL and domain blocklists: the list formats, what an entry blocks (and what it must not), the files'
hashes, and the errors a bad list gives (the clean stage on the sample: tests/test_clean.py)."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace

import pytest

from jobs.config.pii import BlocklistFileConf
from jobs.methods import blocklist
from jobs.runtime import UsageError
from udfs.text import registered_domain


def _lists(tmp_path):
    """A UT1 folder (adult: domains; phishing: urls; gambling: both), a hosts-style domain file and a
    substring file."""
    ut1 = tmp_path / "ut1"
    files = {
        "adult/domains": "# adult sites\nbad-site.com\nsub.mixed.org\n\nco.uk\n",
        "phishing/urls": "https://www.free-host.net/~promo/win/\nexample.org/login?next=1\n",
        "gambling/domains": "casino.example\n",
        "gambling/urls": "casino.example/slots\n",
        "ignored/expressions": "this file is not read\n",
    }
    for name, text in files.items():
        (ut1 / name).parent.mkdir(parents=True, exist_ok=True)
        (ut1 / name).write_text(text)
    hosts = tmp_path / "tracking.hosts"
    hosts.write_text("0.0.0.0 ads.tracker.io\n127.0.0.1 pixel.spy.net # a comment\n*.wild.net\n")
    subs = tmp_path / "subs.txt"
    subs.write_text("# redirects\n/go/aff-\nUTM_SOURCE=SPAM\n")
    return [
        BlocklistFileConf(path=str(ut1), format="ut1", categories=["adult", "phishing"]),
        BlocklistFileConf(path=str(hosts), format="domains"),
        BlocklistFileConf(path=str(subs), format="url_substrings", category="affiliate"),
    ]


# doc_id → (url, the reason it must be dropped for, or None when no list matches it)
DOCS = {
    "d1": ("https://bad-site.com/a", "blocklist:adult"),
    "d2": ("http://www.bad-site.com/b?c=1", "blocklist:adult"),  # a subdomain of a listed domain
    "d3": ("https://notbad-site.com/", None),  # a suffix of the name is not a subdomain
    "d4": ("https://a.sub.mixed.org/x", "blocklist:adult"),
    "d5": ("https://mixed.org/x", None),  # a listed subdomain does not block its parent
    "d6": ("https://news.example.co.uk/", None),  # a public suffix on a list blocks nothing
    "d7": ("https://free-host.net/~promo/win/page.html", "blocklist:phishing"),  # below a listed URL
    "d8": ("https://free-host.net/~promo/winners", None),  # a string prefix, not a path prefix
    "d9": ("https://example.org/login?next=1#top", "blocklist:phishing"),
    "d10": ("https://example.org/login?next=2", None),
    "d11": ("https://ads.tracker.io/p.gif", "blocklist:tracking"),  # hosts-file line
    "d12": ("https://cdn.pixel.spy.net/x", "blocklist:tracking"),
    "d13": ("https://x.wild.net/", "blocklist:tracking"),
    "d14": ("https://shop.com/go/aff-123?to=x", "blocklist:affiliate"),  # substring
    "d15": ("https://shop.com/page?utm_source=spam", "blocklist:affiliate"),  # case-insensitive
    "d16": (None, None),
    "d17": ("https://casino.example/slots", None),  # gambling is not among the ut1 categories asked for
    # On a domain list and matching a substring: the domain match decides (value: both entries).
    "d18": ("https://bad-site.com/go/aff-1", "blocklist:adult"),
}


def test_entry_normalization():
    assert [
        blocklist.domain_entry(x)
        for x in (
            "  Example.COM. ",
            "# c",
            "",
            "0.0.0.0 ads.x.io",
            "*.wild.net",
            "https://a.b.com/p",
            "x.org #c",
        )
    ] == ["example.com", "", "", "ads.x.io", "wild.net", "a.b.com", "x.org"]
    assert [
        blocklist.url_entry(x)
        for x in ("HTTPS://WWW.Example.com/A/", "user@x.org/p#frag", "x.org/p?q=1", "  # no", "x.org///")
    ] == ["example.com/a", "x.org/p", "x.org/p?q=1", "", "x.org"]


def test_lists_match_domains_subdomains_urls_and_substrings(spark, tmp_path):
    lists = blocklist.read(spark, _lists(tmp_path))
    try:
        assert lists.counts == {
            ("adult", "domain"): 3,  # co.uk is on the list; it just never matches
            ("phishing", "url"): 2,
            ("tracking", "domain"): 3,
            ("affiliate", "url_substring"): 2,
        }
        docs = spark.createDataFrame(
            [(d, url, registered_domain(url)) for d, (url, _) in DOCS.items()],
            "doc_id string, url string, domain string",
        )
        got = {r["doc_id"]: r for r in docs.transform(blocklist.mark(lists)).collect()}
    finally:
        lists.unpersist()
    assert {d: r["block_reason"] for d, r in got.items()} == {d: want for d, (_, want) in DOCS.items()}
    assert {d: (r["block_detail"], r["block_value"]) for d, r in got.items() if r["block_reason"]} == {
        "d1": ("domain bad-site.com", 1.0),
        "d2": ("domain bad-site.com", 1.0),
        "d4": ("domain sub.mixed.org", 1.0),
        "d7": ("url free-host.net/~promo/win", 1.0),
        "d9": ("url example.org/login?next=1", 1.0),
        "d11": ("domain ads.tracker.io", 1.0),
        "d12": ("domain pixel.spy.net", 1.0),
        "d13": ("domain wild.net", 1.0),
        "d14": ("url contains '/go/aff-'", 1.0),
        "d15": ("url contains 'utm_source=spam'", 1.0),
        "d18": ("domain bad-site.com", 2.0),  # two entries matched; the domain list outranks the substring
    }


def test_files_hashed_and_recorded_for_audit(spark, tmp_path):
    specs = _lists(tmp_path)
    lists = blocklist.read(spark, specs)
    lists.unpersist()
    ut1 = tmp_path / "ut1"
    want = [
        (ut1 / "adult" / "domains", "domain", "adult"),
        (ut1 / "phishing" / "urls", "url", "phishing"),
        (tmp_path / "tracking.hosts", "domain", "tracking"),
        (tmp_path / "subs.txt", "url_substring", "affiliate"),
    ]
    assert lists.files == [
        blocklist.ListFile(str(p), kind, cat, p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
        for p, kind, cat in want
    ]
    first = lists.files[0]
    assert first.audit_entry() == f"blocklist:{ut1 / 'adult' / 'domains'}|{first.size}|sha256:{first.sha256}"
    assert blocklist.summary(lists)[0] == (
        "  blocklist: 4 files; adult 3 domains; affiliate 2 url substrings; phishing 2 urls; "
        "tracking 3 domains"
    )


def test_bad_lists_are_one_line_errors(tmp_path):
    specs = _lists(tmp_path)
    with pytest.raises(UsageError, match=r"^clean\.blocklist\.lists\[0\]\.categories: porn not under .*ut1 "):
        blocklist.resolve([BlocklistFileConf(path=specs[0].path, format="ut1", categories=["adult", "porn"])])
    missing = SimpleNamespace(path=str(tmp_path / "nope.txt"), format="domains")
    with pytest.raises(UsageError, match=r"^clean\.blocklist\.lists\[1\]\.path: no such file: .*nope\.txt$"):
        blocklist.check_paths([specs[1], missing])
    with pytest.raises(UsageError, match=r"^clean\.blocklist\.lists\[0\]\.path: no such folder"):
        blocklist.check_paths([SimpleNamespace(path=str(tmp_path / "subs.txt"), format="ut1")])
    with pytest.raises(ValueError, match="use categories, not category"):
        BlocklistFileConf(path="x", format="ut1", category="adult")
