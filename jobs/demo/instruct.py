"""The sample's instruction pool: chat examples of four task families, a few malformed records, and targets.

RDS+ (Ivison et al. 2025) selects instruction data for target tasks, so the sample carries a small pool of
chat records next to its web pages (``raw/instruct-000.jsonl``) and, per task family, a benchmark-style
target file (``benchmarks/chat_<family>.jsonl``) with the same fields and ``train``/``dev``/``test`` splits as
the other benchmark files. The families: arithmetic word problems, rewriting (past tense, formal register),
one-sentence summaries of a short passage, and Python Q&A.

* Pool records are Tulu-style ``{"id", "dataset", "messages": [{role, content}]}``; every third is
  ShareGPT-style ``{"id", "dataset", "conversations": [{from, value}]}``, and every fourth Tulu record opens
  with a system message. The malformed records become ``malformed_messages`` rejects.
* Pool examples and targets come from the same templates with other names and numbers, and no two items (of
  the pool or the targets, any family) share a word ``GUARD_NGRAM``-gram, so the clean stage's
  decontamination (13-grams for these targets) drops no chat record and no target text repeats across splits.

Everything draws from its own random stream (``corpuslake-sample:{seed}:instruct``): the web pages, their
files and their truth entries do not depend on it, and it does not depend on ``n_docs``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

from jobs.demo.benchmarks import SPLIT_CYCLE
from jobs.demo.layout import CHAT_FILE, CHAT_TASKS, N_CHAT_POOL, N_CHAT_TARGETS
from jobs.demo.vocab import load_data
from udfs.chat import render_plain
from udfs.decontam import BenchmarkMatcher

_V = load_data("instruct")
_NAMES = _V["names"]
# The decontamination's longest n-gram (clean.decontamination.ngram, 13): the chat targets are long enough
# that it is the one used for them (a benchmark's n is its 5th-percentile example length, within 8-13 words).
GUARD_NGRAM = 13
SYSTEM_PROMPT = "You are a careful assistant who answers briefly."

Item = tuple[str, str]  # (user prompt, assistant answer)


def _arithmetic(rng: random.Random, k: int) -> Item:
    v = _V["arithmetic"]
    name, item, place = rng.choice(_NAMES), rng.choice(v["items"]), rng.choice(v["places"])
    kind = k % 4
    if kind == 0:
        a, b = rng.randint(3, 60), rng.randint(3, 60)
        q = f"{name} found {a} {item} at {place} on Monday and {b} more on Tuesday. How many {item} is that?"
        return q, f"{a} + {b} = {a + b}, so {name} found {a + b} {item}."
    if kind == 1:
        a, b = rng.randint(3, 15), rng.randint(2, 12)
        q = f"A stall at {place} packs {a} {item} in each bag. How many {item} fill {b} bags?"
        return q, f"{b} bags x {a} {item} = {a * b} {item}."
    if kind == 2:
        a = rng.randint(20, 90)
        b = rng.randint(2, a - 1)
        q = f"{name} brought {a} {item} to {place} and sold {b} of them. How many are left?"
        return q, f"{a} - {b} = {a - b}; {name} has {a - b} {item} left."
    b, each = rng.randint(2, 9), rng.randint(2, 12)
    q = f"{name} shares {b * each} {item} from {place} equally among {b} friends. How many does each get?"
    return q, f"{b * each} / {b} = {each}, so each friend gets {each} {item}."


def _rewrite(rng: random.Random, k: int) -> Item:
    v = _V["rewrite"]
    name = rng.choice(_NAMES)
    if k % 2 == 0:
        present, past = rng.choice(v["verbs"])
        obj, when = rng.choice(v["objects"]), rng.choice(v["times"])
        q = f"Rewrite in the past tense: {name} {present} the {obj} {when}."
        return q, f"{name} {past} the {obj} {when}."
    event, day, excuse = rng.choice(v["events"]), rng.choice(v["days"]), rng.choice(v["excuses"])
    q = f"Make this message formal: hey, can't make the {event} on {day}, {excuse}, sorry!"
    excuse = excuse.replace("my kid", "my child")
    to = rng.choice(v["recipients"])
    a = f"Dear {to}, I regret that I cannot attend the {event} on {day}: {excuse}. {name}"
    return q, a


def _summary(rng: random.Random, k: int) -> Item:
    v = _V["summary"]
    town, venue, addition = rng.choice(v["towns"]), rng.choice(v["venues"]), rng.choice(v["additions"])
    funder, effect = rng.choice(v["funders"]), rng.choice(v["effects"])
    year, cost, hours = rng.randint(1995, 2024), rng.randint(12, 480), rng.randint(6, 14)
    days = rng.choice(v["days"])
    passage = (
        f"In {year} the {venue} in {town} opened a new {addition}. It cost {cost} thousand pounds, mostly "
        f"paid by {funder}. The {addition} is open {hours} hours a day, {days}. Since then the "
        f"{venue} has become {effect}."
    )
    q = f"Summarize this passage in one sentence.\n\n{passage}"
    a = f"{town}'s {venue} opened a {addition} in {year} for {cost} thousand pounds, mostly from {funder}."
    return q, a


def _code(rng: random.Random, k: int) -> Item:
    v = _V["code"]
    var = rng.choice(v["lists"])
    kind = k % 5
    if kind == 0:
        q = f"In Python, how do I get the list {var} in reverse order?"
        return q, f"Use slicing, {var}[::-1], for a reversed copy, or {var}.reverse() to reverse it in place."
    if kind == 1:
        q = f"How do I sort the Python list {var} from largest to smallest?"
        return q, f"Call sorted({var}, reverse=True) for a new list, or {var}.sort(reverse=True) in place."
    if kind == 2:
        key, default = rng.choice(v["keys"]), rng.choice(v["defaults"])
        q = f"How do I read the key '{key}' from the dict {var} when it may be missing?"
        return q, f"Use {var}.get('{key}', {default}): it returns {default} when '{key}' is absent."
    if kind == 3:
        word, sep = rng.choice(v["seps"])
        q = f"How do I join the strings in {var} with {word} between them?"
        return q, f"Use the separator's join method: '{sep}'.join({var}) gives one string."
    fname = rng.choice(v["files"])
    q = f"How do I read {fname} into a list {var}, one line per item?"
    a = f"Strip each newline: {var} = [line.rstrip() for line in open('{fname}', encoding='utf-8')]"
    return q, a


FAMILIES: dict[str, Callable[[random.Random, int], Item]] = {
    "chat_arithmetic": _arithmetic,
    "chat_rewrite": _rewrite,
    "chat_summary": _summary,
    "chat_code": _code,
}
assert tuple(FAMILIES) == CHAT_TASKS


def _guarded_items(seed: int) -> dict[str, tuple[list[Item], list[Item]]]:
    """Per family ``(targets, pool)``; no item shares a ``GUARD_NGRAM``-gram with an earlier one."""
    guard = BenchmarkMatcher()
    out = {}
    for name, make in FAMILIES.items():
        rng = random.Random(f"corpuslake-sample:{seed}:instruct:{name}")
        items: list[Item] = []
        tries = 0
        while len(items) < N_CHAT_TARGETS + N_CHAT_POOL:
            tries += 1
            if tries > 100 * (N_CHAT_TARGETS + N_CHAT_POOL):
                raise RuntimeError(f"{name}: cannot draw enough items without shared {GUARD_NGRAM}-grams")
            q, a = make(rng, rng.randrange(60))  # the kind: drawn, so one that runs dry never stalls
            # What decontamination compares: a target's text (question, answer) and a record's rendering.
            chat = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
            texts = (f"{q}\n{a}", render_plain(chat))
            grams = {g for t in texts for g, _, _ in guard.grams(t, GUARD_NGRAM)}
            if grams & guard.index.keys():
                continue
            for g in grams:
                guard.index[g] = (name, str(len(items)))
            items.append((q, a))
        out[name] = (items[:N_CHAT_TARGETS], items[N_CHAT_TARGETS:])
    return out


def make_instruct(seed: int) -> tuple[dict[str, list[dict]], list[tuple[str, str | None, dict]]]:
    """The chat targets and the pool's records.

    Returns:
        ``(targets, records)``: ``targets`` maps each family's benchmark name to its rows (the fields of the
        other benchmark files: ``benchmark, split, id, question, choices, answer, support``; no choices or
        support); ``records`` is the pool file's records in order, each ``(family, malformed detail or None,
        record without its id)``.
    """
    items = _guarded_items(seed)
    targets = {}
    for name, (rows, _pool) in items.items():
        targets[name] = [
            {
                "benchmark": name,
                "split": SPLIT_CYCLE[(i - 1) % len(SPLIT_CYCLE)],
                "id": f"{name}-{i:04d}",
                "question": q,
                "choices": None,
                "answer": a,
                "support": None,
            }
            for i, (q, a) in enumerate(rows, start=1)
        ]
    records: list[tuple[str, str | None, dict]] = []
    k = 0
    for j in range(N_CHAT_POOL):
        for name, (_rows, pool) in items.items():
            q, a = pool[j]
            rec: dict = {"dataset": f"demo-{name}"}
            if k % 3 == 2:
                rec["conversations"] = [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
            else:
                msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
                if k % 4 == 0:
                    msgs.insert(0, {"role": "system", "content": SYSTEM_PROMPT})
                rec["messages"] = msgs
            records.append((name, None, rec))
            k += 1
    rng = random.Random(f"corpuslake-sample:{seed}:instruct:malformed")
    for detail, rec in _malformed():
        records.insert(rng.randint(1, len(records)), ("", detail, rec))
    return targets, records


def _malformed() -> list[tuple[str, dict]]:
    """Records ingest must reject as ``malformed_messages``, with the detail it gives (``udfs.chat``)."""
    return [
        (
            "messages[1] has no 'content'",
            {
                "dataset": "demo-broken",
                "messages": [{"role": "user", "content": "What is 7 + 5?"}, {"role": "assistant"}],
            },
        ),
        (
            "conversations[1].value is int, not a string",
            {
                "dataset": "demo-broken",
                "conversations": [{"from": "human", "value": "What is 6 x 7?"}, {"from": "gpt", "value": 42}],
            },
        ),
        ("'messages' is str, not a list", {"dataset": "demo-broken", "messages": "What is 9 - 4?"}),
    ]


def chat_lines(records: list[tuple[str, str | None, dict]]) -> tuple[bytes, list[dict], list[dict]]:
    """The pool file's bytes, and its truth: ``docs`` (``id, family, format, record_number``) and
    ``malformed`` (``id, record_number, detail``). Ids are ``instruct-000-<line>``, numbered by line as the
    web JSONL files number theirs."""
    stem = CHAT_FILE.rsplit("/", 1)[-1].split(".")[0]
    lines, docs, bad = [], [], []
    for rn, (family, detail, rec) in enumerate(records, start=1):
        rid = f"{stem}-{rn:06d}"
        lines.append(json.dumps({"id": rid, **rec}, ensure_ascii=False))
        if detail is None:
            fmt = "messages" if "messages" in rec else "conversations"
            docs.append({"id": rid, "family": family, "format": fmt, "record_number": rn})
        else:
            bad.append({"id": rid, "record_number": rn, "detail": detail})
    return "".join(line + "\n" for line in lines).encode("utf-8"), docs, bad
