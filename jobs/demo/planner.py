"""Planning the sample: which documents exist, and the duplicates and contamination planted among them.

:class:`Planner` draws every accepted document (category quotas, domain, text), then plants boilerplate
negatives, benchmark contamination, near-duplicate pairs and chains, and exact copies, and records each
planted structure for ``truth.json``.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta

from jobs.demo.categories import non_english_lang, page
from jobs.demo.layout import BENCHMARK_NAMES, CATEGORY_SHARES
from jobs.demo.vocab import DOMAINS, SWAP_WORDS, WORD_RE, Domain, jaccard, sentences, shingles, word_count


@dataclass
class Doc:
    """One accepted document while the corpus is being planned."""

    key: int  # serial used in URLs; unique across the corpus
    category: str
    lang: str
    topic: str
    dom: Domain
    host: str
    title: str
    text: str
    day: date
    role: str = ""  # "" when the document takes part in no planted structure
    file: str = ""
    record_number: int = 0
    doc_id: str = ""
    url: str = ""
    lang_hint: bool = False


_SENT_SPLIT = re.compile(r"(?<=[.!?\"])\s+(?=[A-Z\"])")
_YEAR_RE = re.compile(r"\b(19[5-9]\d|20[0-2]\d)\b")


def _quotas(n: int) -> dict[str, int]:
    """Largest-remainder rounding of ``CATEGORY_SHARES`` to integer counts summing to ``n``."""
    raw = {c: s * n for c, s in CATEGORY_SHARES.items()}
    out = {c: int(v) for c, v in raw.items()}
    rest = n - sum(out.values())
    for c in sorted(raw, key=lambda c: (-(raw[c] - out[c]), c))[:rest]:
        out[c] += 1
    return out


def _bench_index(bench: dict[str, list[dict]], n: int = 13) -> dict[tuple[str, ...], set[str]]:
    """Word ``n``-gram -> ids of the benchmark examples whose question or support contains it."""
    index: dict[tuple[str, ...], set[str]] = {}
    for rows in bench.values():
        for ex in rows:
            for g in shingles(ex["question"], n) | shingles(ex["support"], n):
                index.setdefault(g, set()).add(ex["id"])
    return index


def _unique_span(text: str, own_id: str, index: dict[tuple[str, ...], set[str]], n: int = 13) -> str:
    """Longest run of whole sentences of ``text`` whose ``n``-grams occur in no other example."""
    sents = re.split(r"(?<=[.?!])\s+", text)
    best = ""
    for i in range(len(sents)):
        for j in range(i, len(sents)):
            span = " ".join(sents[i : j + 1])
            if any(index.get(g, {own_id}) != {own_id} for g in shingles(span, n)):
                break  # longer runs keep the shared n-gram
            if len(WORD_RE.findall(span)) >= n and len(span) > len(best):
                best = span
    return best


class Planner:
    """Builds the list of accepted documents and the planted duplicate/contamination structure."""

    def __init__(self, rng: random.Random, n_docs: int, benchmarks: dict[str, list[dict]]):
        self.rng = rng
        self.n_docs = n_docs
        self.bench = benchmarks
        self.docs: list[Doc] = []
        self.by_cat_domains: dict[str, list[Domain]] = {}
        for dom in DOMAINS:
            self.by_cat_domains.setdefault(dom.category, []).append(dom)
        self.en_prose_domains = [d for d in DOMAINS if d.category == "prose"]
        self.exact_pairs: list[tuple[Doc, Doc, bool]] = []  # (original, copy, byte_identical)
        self.near_pairs: list[tuple[Doc, Doc, float]] = []
        self.chains: list[tuple[Doc, Doc, Doc, float]] = []  # (a, b, c, jaccard_ac)
        self.negatives: list[tuple[Doc, Doc, float]] = []
        # (doc, benchmark, example_id, field, leaked text, ids of all examples sharing a 13-gram with the doc)
        self.contaminated: list[tuple[Doc, str, str, str, str, list[str]]] = []
        self.groups: list[list[Doc]] = []  # docs whose global order must follow the list order

    # -- helpers ----------------------------------------------------------------------------------
    def _pick_domain(self, category: str, lang: str = "en") -> Domain:
        rng = self.rng
        if category == "non_english":
            return rng.choice([d for d in self.by_cat_domains["non_english"] if d.lang == lang])
        if category == "prose" or rng.random() < 0.75:
            return rng.choice(self.by_cat_domains[category])
        # The rest spills onto general-interest sites so that no domain is perfectly pure.
        return rng.choice(self.en_prose_domains)

    def _host(self, dom: Domain) -> str:
        if len(dom.hosts) == 1 or self.rng.random() < 0.7:
            return dom.hosts[0]
        return self.rng.choice(dom.hosts[1:])

    def _day(self) -> date:
        return date(2018, 1, 1) + timedelta(days=self.rng.randrange(7 * 365))

    def _new_doc(self, category: str, lang: str = "en") -> Doc:
        if category == "non_english":
            lang = non_english_lang(self.rng)
        dom = self._pick_domain(category, lang)
        title, text = page(self.rng, category, dom, lang)
        return Doc(len(self.docs), category, lang, dom.topic, dom, self._host(dom), title, text, self._day())

    def _derived(self, src: Doc, text: str, same_domain_p: float) -> Doc:
        dom = src.dom if self.rng.random() < same_domain_p else self._pick_domain(src.category, src.lang)
        doc = Doc(
            len(self.docs),
            src.category,
            src.lang,
            src.topic,
            dom,
            self._host(dom),
            src.title,
            text,
            self._day(),
        )
        self.docs.append(doc)
        return doc

    # -- plan ---------------------------------------------------------------------------------------
    def build(self) -> None:
        rng, n = self.rng, self.n_docs
        quotas = _quotas(n)
        n_exact = max(6, round(0.03 * n))
        n_near = max(8, round(0.03 * n))
        n_chains = max(2, round(n / 1000))
        n_neg = max(3, round(n / 500))
        # Copies take the category of their original, so reserve them inside the category quotas.
        cats = list(quotas)
        exact_cats = rng.choices(cats, weights=[quotas[c] for c in cats], k=n_exact)
        derived = {c: exact_cats.count(c) for c in cats}
        derived["prose"] += n_near  # near duplicates are edited English prose articles
        seen: set[str] = set()
        for cat in cats:
            for _ in range(quotas[cat] - derived[cat]):
                while True:
                    doc = self._new_doc(cat)
                    norm = " ".join(doc.text.split())
                    if norm not in seen:  # no accidental exact duplicates
                        seen.add(norm)
                        break
                self.docs.append(doc)
        order = list(self.docs)
        rng.shuffle(order)  # choose planted docs at random, not by generation order
        self._plant_negatives(order, n_neg)
        self._plant_contamination(order)
        self._plant_near(order, n_near, n_chains)
        self._plant_exact(order, exact_cats)
        assert len(self.docs) == n, (len(self.docs), n)

    def _plant_negatives(self, order: list[Doc], n_pairs: int) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose" and word_count(d.text) >= 200]
        for _ in range(n_pairs):
            if len(pool) < 2:
                break
            a, b = pool.pop(), pool.pop()
            b.dom, b.host, b.topic = a.dom, a.host, a.topic  # same site, same chrome, different article
            site = a.dom.site_name
            header = (
                f"{site}\nHome | News | Features | Opinion | Reviews | About us | Contact\n"
                f"Skip to main content\nWe use cookies to give you the best experience on {site}. "
                f"Read our cookie policy to find out more."
            )
            footer = (
                f"Subscribe to the {site} newsletter for weekly updates straight to your inbox.\n"
                f"Privacy Policy | Terms of Use | Cookie Settings | Accessibility | Advertise with us\n"
                f"© {rng.randint(2019, 2024)} {site} Media Ltd. All rights reserved. "
                f"Registered in England and Wales, company number {rng.randint(1000000, 9999999)}."
            )
            for d in (a, b):
                d.text = f"{header}\n\n{d.text}\n\n{footer}"
                d.role = "negative"
            j = jaccard(shingles(a.text), shingles(b.text))
            self.negatives.append((a, b, j))

    def _plant_contamination(self, order: list[Doc]) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose"]
        intros = {
            "mc_science": "Here is a practice question from our study group that caught everyone out: {q}",
            "math_word": "A reader sent us this homework problem last week: {q} We will go through the "
            "solution step by step in the next post.",
            "reading_comp": "The following text was used in a reading exercise at a local school: {q}",
        }
        index = _bench_index(self.bench)
        for bench_name in BENCHMARK_NAMES:
            field = "support" if bench_name == "reading_comp" else "question"
            # Examples built from one template share long phrases, so leak a run of sentences whose 13-grams
            # belong to this example alone: a 13-gram decontaminator then matches exactly one example.
            cands = []
            for ex in self.bench[bench_name]:
                span = _unique_span(ex[field], ex["id"], index)
                if len(WORD_RE.findall(span)) >= 15:
                    cands.append((ex, span))
            # Prefer the longer leaks (a long verbatim run is the typical contamination pattern).
            cands.sort(key=lambda c: (-len(c[1]), c[0]["id"]))
            for ex, span in rng.sample(cands[:12], 2):
                doc = pool.pop()
                blocks = doc.text.split("\n\n")
                blocks.insert(rng.randint(2, len(blocks)), intros[bench_name].format(q=span))
                doc.text = "\n\n".join(blocks)
                doc.role = "contaminated"
                found: set[str] = set()
                for g in shingles(doc.text, 13):
                    found |= index.get(g, set())
                self.contaminated.append((doc, bench_name, ex["id"], field, span, sorted(found)))

    def _plant_near(self, order: list[Doc], n_near: int, n_chains: int) -> None:
        rng = self.rng
        pool = [d for d in order if not d.role and d.category == "prose" and word_count(d.text) >= 150]
        made = 0
        for _ in range(n_chains):
            a = pool.pop()
            b_text, j_ab = _near_duplicate(rng, a.text, a.topic, target=(0.86, 0.92))
            b = self._derived(a, b_text, 0.6)
            c_text, j_bc = _near_duplicate(rng, b.text, a.topic, target=(0.86, 0.92))
            c = self._derived(a, c_text, 0.6)
            j_ac = jaccard(shingles(a.text), shingles(c.text))
            for d, role in ((a, "near_source"), (b, "near_copy"), (c, "near_copy")):
                d.role = role
            self.near_pairs += [(a, b, j_ab), (b, c, j_bc)]
            self.chains.append((a, b, c, j_ac))
            self.groups.append([a, b, c])
            made += 2
        while made < n_near:
            a = pool.pop()
            b_text, j = _near_duplicate(rng, a.text, a.topic)
            b = self._derived(a, b_text, 0.6)
            a.role, b.role = "near_source", "near_copy"
            self.near_pairs.append((a, b, j))
            self.groups.append([a, b])
            made += 1

    def _plant_exact(self, order: list[Doc], exact_cats: list[str]) -> None:
        rng = self.rng
        pools: dict[str, list[Doc]] = {}
        for d in order:
            if not d.role:
                pools.setdefault(d.category, []).append(d)
        last_src: Doc | None = None
        for cat in exact_cats:
            # About one copy in ten is a second copy of the previous original (clusters of three).
            if last_src is not None and last_src.category == cat and rng.random() < 0.1:
                src = last_src
            else:
                src = pools[cat].pop()
                src.role = "exact_source"
                self.groups.append([src])
            last_src = src
            identical = rng.random() < 0.67
            text = src.text if identical else _whitespace_variant(rng, src.text)
            copy = self._derived(src, text, 0.35)
            copy.role = "exact_copy"
            self.exact_pairs.append((src, copy, identical))
            next(g for g in self.groups if g[0] is src).append(copy)


def _whitespace_variant(rng: random.Random, text: str) -> str:
    """Copy of ``text`` that differs only in whitespace (identical after collapsing runs)."""
    kind = rng.randrange(4)
    if kind == 0:
        out = text.replace("\n\n", "\n\n\n") + "\n"
    elif kind == 1:
        words = text.split(" ")
        out = " ".join(w + (" " if i % 7 == 3 else "") for i, w in enumerate(words))
    elif kind == 2:
        out = "  " + text.replace("\n", " \n") + "   "
    else:
        out = text.replace(". ", ".\t")
    if out == text:
        out = text + " "
    return out


def _split_blocks(text: str) -> list[list[str]]:
    return [_SENT_SPLIT.split(b) for b in text.split("\n\n")]


def _join_blocks(blocks: list[list[str]]) -> str:
    return "\n\n".join(" ".join(b) for b in blocks if b)


def _edit_once(rng: random.Random, blocks: list[list[str]], topic: str, kind: str) -> bool:
    """Apply one small edit in place; returns False when the edit was not applicable."""
    body = list(range(1, len(blocks)))
    if not body:
        return False
    bi = rng.choice(body)
    sents = blocks[bi]
    if kind == "sub":
        si = rng.randrange(len(sents))
        words = sents[si].split(" ")
        cands = [i for i, w in enumerate(words) if i > 0 and w.isalpha() and len(w) > 2]
        if not cands:
            return False
        wi = rng.choice(cands)
        new = rng.choice(SWAP_WORDS)
        if new == words[wi].lower():
            return False
        words[wi] = new
        sents[si] = " ".join(words)
    elif kind == "drop":
        if len(sents) < 2:
            return False
        sents.pop(rng.randrange(len(sents)))
    elif kind == "add":
        sents.insert(rng.randint(0, len(sents)), sentences(rng, "en", topic, 1)[0])
    else:  # "date": move a year by a few years, the typical re-published-article edit
        for bi in [i for i in range(1, len(blocks)) if _YEAR_RE.search(" ".join(blocks[i]))]:
            for si, s in enumerate(blocks[bi]):
                m = _YEAR_RE.search(s)
                if m:
                    year = int(m.group(1)) + rng.choice((-3, -2, -1, 1, 2))
                    blocks[bi][si] = s[: m.start()] + str(year) + s[m.end() :]
                    return True
        return False
    return True


def _near_duplicate(
    rng: random.Random, text: str, topic: str, lo: float = 0.80, target: tuple[float, float] = (0.82, 0.93)
) -> tuple[str, float]:
    """Edit ``text`` until its word-5-gram Jaccard with the original drops to a goal drawn from ``target``.

    Edits are word swaps, sentence drops/additions and a date change; any edit that would push the
    similarity below ``lo`` is discarded, so the result always stays a near duplicate.

    Returns:
        The edited text and its Jaccard similarity with ``text`` (rounded to 4 places).
    """
    goal = rng.uniform(*target)
    base = shingles(text)
    cur = _split_blocks(text)
    if rng.random() < 0.6:
        _edit_once(rng, cur, topic, "date")
    if rng.random() < 0.7:
        trial = [list(b) for b in cur]
        if _edit_once(rng, trial, topic, rng.choice(("drop", "add"))) and jaccard(
            base, shingles(_join_blocks(trial))
        ) >= max(goal, lo):
            cur = trial
    # A word swap replaces about five shingles, so estimate the swaps needed and do most of them in
    # one batch: recomputing the Jaccard after every single edit would dominate the run time.
    n_words = len(WORD_RE.findall(text))
    est = int(n_words * (1 - goal) / (1 + goal) / 5 * 0.7)
    for _ in range(est):
        _edit_once(rng, cur, topic, "sub")
    j = jaccard(base, shingles(_join_blocks(cur)))
    for _ in range(500):
        if j <= goal:
            break
        trial = [list(b) for b in cur]
        kind = rng.choices(("sub", "drop", "add"), weights=(8, 1, 1))[0]
        if not _edit_once(rng, trial, topic, kind):
            continue
        jj = jaccard(base, shingles(_join_blocks(trial)))
        if jj >= lo:
            cur, j = trial, jj
    return _join_blocks(cur), round(j, 4)
