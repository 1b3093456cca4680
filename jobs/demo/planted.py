"""What the sample plants for the clean stage's blocklist and PII steps.

* Blocked sites (``data/blocked_sites.json``): a few English prose pages move to sites that the demo's
  bundled lists block (``data/blocklist/`` in the UT1 layout, ``data/url_substrings.txt``): whole domains
  with their subdomains, one page tree of a site by URL (and a page of the same site outside it, which stays),
  one URL by substring.
* PII: a few English prose pages get a paragraph with e-mail addresses, phone numbers and public IP
  addresses, next to look-alikes that must not count (a private address, a version string, dates and a
  time), and one page a staff directory with more addresses than the demo keeps.

Both work on documents in no planted structure (no duplicate, contamination or boilerplate pair) and draw from
their own random stream, so every other document, file placement and truth entry stays as it was.
"""

from __future__ import annotations

import random

from jobs.demo.planner import Doc
from jobs.demo.vocab import FIRST_NAMES, LAST_NAMES, Domain, load_data

BLOCKED_SITES = load_data("blocked_sites")
N_PII_DOCS = 3  # pages with a PII paragraph; one more gets the staff directory
DIRECTORY_EMAILS = 6  # more than Dolma's 5: the demo drops that page (pii:total)


def _pool(docs: list[Doc]) -> list[Doc]:
    # Role "" is a page in no planted structure outside the WARC file (HTML extraction may reflow text).
    return sorted(
        (d for d in docs if not d.role and d.category == "prose" and d.lang == "en"), key=lambda d: d.key
    )


def plant_blocked(seed: int, docs: list[Doc]) -> tuple[list[tuple[Doc, str, str]], list[Doc], list[Domain]]:
    """Move pages to the blocked sites (after URLs were assigned).

    Returns:
        ``(blocked, negatives, domains)``: each moved page with its category and how a list matches it, the
        pages on a listed site that no list matches, and the sites as ``Domain`` entries for the truth.
    """
    rng = random.Random(f"corpuslake-sample:{seed}:blocklist")
    pool = _pool(docs)
    blocked, negatives, domains = [], [], []
    for site in BLOCKED_SITES:
        dom = Domain(site["name"], tuple(site["hosts"]), "general", "prose", "en")
        domains.append(dom)
        n_neg = 1 if "negative_path" in site else 0
        for i in range(site["docs"] + n_neg):
            d = pool.pop(rng.randrange(len(pool)))
            d.dom, d.host, d.topic = dom, dom.hosts[i % len(dom.hosts)], dom.topic
            d.role = "blocked"
            slug = d.url.rstrip("/").rsplit("/", 1)[-1]
            if i >= site["docs"]:  # the page next to the blocked tree: a string prefix, not a path prefix
                d.url = f"https://{d.host}{site['negative_path']}{slug}"
                d.role = "blocklist_negative"
                negatives.append(d)
                continue
            if site["match"] == "domain":
                d.url = f"https://{d.host}/{d.day.year}/{d.day.month:02d}/{slug}"
            else:
                d.url = f"https://{d.host}{site['path']}{slug}"
            blocked.append((d, site["category"], site["match"]))
    return blocked, negatives, domains


def _ipv4(rng: random.Random) -> str:
    # First octets of ordinary unicast space (no private, shared, loopback or multicast range).
    return (
        f"{rng.choice((23, 31, 45, 62, 77, 81, 89, 145, 185, 212))}.{rng.randrange(1, 255)}."
        f"{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
    )


def _person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def plant_pii(seed: int, docs: list[Doc]) -> dict[str, tuple[Doc, dict[str, int]]]:
    """Add PII paragraphs to a few pages; per page, the matches a detector must count by type.

    Returns:
        ``{key: (doc, counts)}`` with counts for ``email``, ``phone``, ``ipv4`` and ``ipv6``.
    """
    rng = random.Random(f"corpuslake-sample:{seed}:pii")
    pool = _pool(docs)
    out = {}
    for k in range(N_PII_DOCS + 1):
        d = pool.pop(rng.randrange(len(pool)))
        site = d.host.removeprefix("www.")
        if k == N_PII_DOCS:
            people = [_person(rng) for _ in range(DIRECTORY_EMAILS)]
            # Whole sentences, so that c4_lines (lines without terminal punctuation go) keeps them.
            lines = [
                f"{f} {last} answers mail at {f.lower()}.{last.lower()}@{site} on weekdays."
                for f, last in people
            ]
            para = "The staff directory was updated on 2021-03-14.\n" + "\n".join(lines)
            counts = {"email": DIRECTORY_EMAILS, "phone": 0, "ipv4": 0, "ipv6": 0}
        elif k % 3 == 0:
            f, last = _person(rng)
            area, mid, end = rng.randrange(201, 990), rng.randrange(200, 1000), rng.randrange(0, 10000)
            para = (
                f"For questions about this article write to {f.lower()}.{last.lower()}@{site} or call "
                f"({area}) {mid}-{end:04d} on weekdays; the reader desk closes on 24.12.2023 at 12:30:45."
            )
            counts = {"email": 1, "phone": 1, "ipv4": 0, "ipv6": 0}
        elif k % 3 == 1:
            v6 = ":".join(f"{rng.randrange(1, 0xFFFF):x}" for _ in range(2))
            v6 = f"2a02:{v6}::{rng.randrange(1, 0xFFFF):x}"  # global unicast (2000::/3)
            private = f"192.168.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
            version = ".".join(str(rng.randrange(0, 20)) for _ in range(4))
            para = (
                f"The photo archive moved to a new server at {_ipv4(rng)} (IPv6 {v6}); inside the office "
                f"it is still {private}, and the viewer needs version {version}."
            )
            counts = {"email": 0, "phone": 0, "ipv4": 1, "ipv6": 1}
        else:
            catalogue = ".".join(str(rng.randrange(1, 10)) for _ in range(4))
            para = (
                f"The series ran from 2019-2020 and resumed on 2022-05-{rng.randrange(10, 29)}; the "
                f"catalogue number is {catalogue}, and the old mailing list at newsletter@ moved to the "
                "contact form."
            )
            counts = {"email": 0, "phone": 0, "ipv4": 0, "ipv6": 0}
        d.text = f"{d.text}\n\n{para}"
        d.role = "pii"
        out[str(d.key)] = (d, counts)
    return out
