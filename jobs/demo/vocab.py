"""Vocabularies, domains and the template machinery every text of the sample is built with.

The words and templates are data (``jobs/demo/data/*.json``); this module loads them once and fills
templates: ``{slot}`` draws from a vocabulary, ``[a|b|c]`` picks one literal alternative.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources


def _frozen(value):
    """JSON arrays as tuples, all the way down (the generator treats its vocabularies as immutable)."""
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: _frozen(v) for k, v in value.items()}
    return value


@cache
def load_data(name: str):
    """One data file of ``jobs/demo/data`` (``name`` without ``.json``), arrays as tuples."""
    text = resources.files(__package__).joinpath("data", f"{name}.json").read_text(encoding="utf-8")
    return _frozen(json.loads(text))


_EN = load_data("english")
FIRST_NAMES: tuple[str, ...] = _EN["first_names"]
LAST_NAMES: tuple[str, ...] = _EN["last_names"]
PLACES: tuple[str, ...] = _EN["places"]
MONTHS: tuple[str, ...] = _EN["months"]
#: Words used by the near-duplicate editor when it swaps a word.
SWAP_WORDS: tuple[str, ...] = _EN["swap_words"]
#: topic -> {nouns, adjectives, verbs (past tense), roles}
TOPICS: dict[str, dict[str, tuple[str, ...]]] = load_data("topics")
#: Non-English vocabularies.  Slot fillers are whole phrases in the grammatical form their template position
#: needs, so sentences stay correct without a morphology engine.
LANGS: dict[str, dict[str, tuple[str, ...]]] = load_data("languages")


@dataclass(frozen=True)
class Domain:
    """One registered domain of the sample web."""

    name: str  # registered domain (eTLD+1), e.g. "cooking-notes.co.uk"
    hosts: tuple[str, ...]
    topic: str
    category: str  # dominant category of the documents hosted here
    lang: str

    @property
    def site_name(self) -> str:
        """Human-readable site name derived from the registered domain."""
        return self.name.split(".")[0].replace("-", " ").title()


#: Multi-part public suffixes (.co.uk, .com.au, .qc.ca, ...) and subdomains on purpose: the pipeline's domain
#: extraction must map every host to its registered domain.
DOMAINS = tuple(Domain(**d) for d in load_data("domains"))

# Alternatives every few words keep fixed word runs short, so reused templates do not create repeated n-grams
# that would make clean prose look repetitive to quality filters.
_SLOT_RE = re.compile(r"\{(\w+)\}|\[([^\[\]]+)\]")
WORD_RE = re.compile(r"\w+")
_AN_RE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])")

Parts = tuple[tuple[str, "str | tuple[str, ...]"], ...]


def compile_template(template: str) -> Parts:
    """Split a template into (literal, slot) pairs.

    A slot is a vocabulary name (numeric suffix dropped, so ``{n2}`` draws another ``n``), a tuple of
    literal alternatives, or ``""`` after the final literal.
    """
    parts: list = []
    pos = 0
    for m in _SLOT_RE.finditer(template):
        slot = m.group(1).rstrip("0123456789") if m.group(1) else tuple(m.group(2).split("|"))
        parts.append((template[pos : m.start()], slot))
        pos = m.end()
    parts.append((template[pos:], ""))
    return tuple(parts)


def _plural(word: str) -> str:
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


class Vocab:
    """Slot fillers for one topic or language; ``fill`` expands a compiled template."""

    def __init__(self, lists: dict[str, tuple[str, ...]], first: tuple[str, ...], last: tuple[str, ...]):
        self.lists = lists
        self.first = first
        self.last = last

    def pick(self, slot: str, rng: random.Random) -> str:
        lst = self.lists.get(slot)
        if lst is not None:
            return lst[int(rng.random() * len(lst))]
        if slot == "name":
            return f"{rng.choice(self.first)} {rng.choice(self.last)}"
        if slot == "y":
            return str(rng.randint(1990, 2024))
        if slot == "num":
            return str(rng.randint(2, 40))
        if slot == "pct":
            return str(rng.randint(5, 95))
        if slot == "price":
            return f"{rng.choice('$£')}{rng.randint(5, 900)}"
        raise KeyError(slot)

    def fill(self, parts: Parts, rng: random.Random, cap: bool = True) -> str:
        out = []
        for lit, slot in parts:
            out.append(lit)
            if isinstance(slot, tuple):
                out.append(slot[int(rng.random() * len(slot))])
            elif slot:
                out.append(self.pick(slot, rng))
        s = "".join(out)
        return s[0].upper() + s[1:] if cap else s


def _topic_vocab(topic: str) -> Vocab:
    words = TOPICS[topic]
    return Vocab(
        {
            "n": words["nouns"],
            "a": words["adjectives"],
            "v": words["verbs"],
            "r": words["roles"],
            "rs": tuple(_plural(r) for r in words["roles"]),
            "p": PLACES,
            "m": MONTHS,
            "adv": _EN["adverbs"],
            "conn": _EN["connectors"],
        },
        FIRST_NAMES,
        LAST_NAMES,
    )


def _lang_vocab(lang: str) -> Vocab:
    spec = LANGS[lang]
    lists = {k: v for k, v in spec.items() if k not in ("first", "last", "templates", "titles")}
    return Vocab(lists, spec["first"], spec["last"])


TOPIC_VOCAB = {t: _topic_vocab(t) for t in TOPICS}
_LANG_VOCAB = {lang: _lang_vocab(lang) for lang in LANGS}
_EN_COMPILED = tuple(compile_template(t) for t in _EN["templates"])
_EN_TITLES_COMPILED = tuple(compile_template(t) for t in _EN["titles"])
_LANG_COMPILED = {lang: tuple(compile_template(t) for t in spec["templates"]) for lang, spec in LANGS.items()}
_LANG_TITLES_COMPILED = {
    lang: tuple(compile_template(t) for t in spec["titles"]) for lang, spec in LANGS.items()
}


def sentences(rng: random.Random, lang: str, topic: str, k: int) -> list[str]:
    """Return ``k`` sentences, cycling through a shuffled template list to limit repetition."""
    if lang == "en":
        vocab, templates = TOPIC_VOCAB[topic], _EN_COMPILED
    else:
        vocab, templates = _LANG_VOCAB[lang], _LANG_COMPILED[lang]
    order = list(range(len(templates)))
    rng.shuffle(order)
    out = []
    for i in range(k):
        s = vocab.fill(templates[order[i % len(order)]], rng)
        out.append(_AN_RE.sub(r"\1n ", s) if lang == "en" else s)
    return out


def make_title(rng: random.Random, lang: str, topic: str) -> str:
    if lang == "en":
        return _AN_RE.sub(r"\1n ", TOPIC_VOCAB[topic].fill(rng.choice(_EN_TITLES_COMPILED), rng))
    return _LANG_VOCAB[lang].fill(rng.choice(_LANG_TITLES_COMPILED[lang]), rng)


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word ``n``-grams over lower-cased ``\\w+`` tokens (the Jaccard convention recorded in truth)."""
    toks = WORD_RE.findall(text.lower())
    if len(toks) < n:
        return {tuple(toks)} if toks else set()
    return set(zip(*(toks[i:] for i in range(n)), strict=False))


def jaccard(a: set, b: set) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def word_count(text: str) -> int:
    return len(text.split())
