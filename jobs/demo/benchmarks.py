"""The sample's benchmarks: multiple-choice science, maths word problems, reading comprehension.

Science questions come from ``mc_science.json``; names, places, towns, rivers and trades from
``benchmarks.json`` (both in ``jobs/demo/data``).  Each set depends only on the seed, never on ``n_docs``.
"""

from __future__ import annotations

import random

from jobs.demo.vocab import LAST_NAMES, load_data

_MC_ITEMS = tuple(
    (it["question"], it["answer"], it["distractors"], it["explanation"]) for it in load_data("mc_science")
)
_BENCH = load_data("benchmarks")
_NAMES, _PLACES = _BENCH["names"], _BENCH["places"]
_TOWNS, _RIVERS, _JOBS = _BENCH["towns"], _BENCH["rivers"], _BENCH["jobs"]


def _mc_science(rng: random.Random) -> list[dict]:
    examples = []
    combos = [(n, p) for n in _NAMES for p in _PLACES]
    rng.shuffle(combos)
    k = 0
    for _variant in range(3):
        for q, correct, wrong, expl in _MC_ITEMS:
            name, place = combos[k]
            k += 1
            choices = [correct, *wrong]
            rng.shuffle(choices)
            examples.append(
                {
                    "question": q.format(name=name, place=place),
                    "choices": choices,
                    "answer": "ABCD"[choices.index(correct)],
                    "support": expl,
                }
            )
    return examples


def _math_word(rng: random.Random) -> list[dict]:
    names = _NAMES
    seen: set[str] = set()
    examples = []
    while len(examples) < 60:
        kind = len(examples) % 10
        name = rng.choice(names)
        if kind == 0:
            a, b = rng.randint(3, 12), rng.randint(6, 24)
            c = rng.randint(1, a * b - 1)
            q = (
                f"{name} buys {a} boxes of pencils for the school year. Each box holds {b} pencils, and "
                f"{name} gives {c} pencils to classmates. How many pencils does {name} have left?"
            )
            ans, sup = a * b - c, f"{a} x {b} = {a * b}; {a * b} - {c} = {a * b - c}."
        elif kind == 1:
            p, a, b = rng.randint(2, 6), rng.randint(10, 60), rng.randint(10, 60)
            q = (
                f"A bakery sells muffins for {p} dollars each. On Saturday it sold {a} muffins in the "
                f"morning and {b} muffins in the afternoon. How many dollars did the bakery earn from "
                f"muffins on Saturday?"
            )
            ans, sup = p * (a + b), f"{a} + {b} = {a + b} muffins; {a + b} x {p} = {p * (a + b)} dollars."
        elif kind == 2:
            a, d = rng.randint(8, 30), rng.randint(3, 9)
            total = a * d + rng.randint(5, 150)
            q = (
                f"{name} is reading a book with {total} pages and reads {a} pages every day for {d} days. "
                f"How many pages are still left to read after those {d} days?"
            )
            ans, sup = total - a * d, f"{a} x {d} = {a * d}; {total} - {a * d} = {total - a * d}."
        elif kind == 3:
            cap, n = rng.randint(20, 50), rng.randint(60, 400)
            q = (
                f"A school bus can carry {cap} students. If {n} students are going on a field trip, what is "
                f"the smallest number of buses the school needs to rent for the whole group?"
            )
            ans, sup = -(-n // cap), f"{n} / {cap} = {n / cap:.2f}, rounded up to {-(-n // cap)} buses."
        elif kind == 4:
            a, w = rng.randint(5, 25), rng.randint(4, 20)
            b = rng.randint(5, a * w - 1)
            q = (
                f"{name} saves {a} dollars every week. After {w} weeks, {name} spends {b} dollars on a new "
                f"bike helmet. How much money does {name} have saved now?"
            )
            ans, sup = a * w - b, f"{a} x {w} = {a * w}; {a * w} - {b} = {a * w - b}."
        elif kind == 5:
            ln, wd = rng.randint(5, 40), rng.randint(3, 30)
            q = (
                f"A garden is shaped like a rectangle that is {ln} meters long and {wd} meters wide. {name} "
                f"wants to put a fence around the whole garden. How many meters of fence are needed?"
            )
            ans, sup = 2 * (ln + wd), f"Perimeter = 2 x ({ln} + {wd}) = {2 * (ln + wd)}."
        elif kind == 6:
            a, b, c = rng.randint(40, 120), rng.randint(5, 30), rng.randint(5, 40)
            d = rng.randint(5, a - b + c - 1)
            q = (
                f"A train leaves the station with {a} passengers. At the first stop {b} passengers get off "
                f"and {c} get on. At the second stop {d} passengers get off. How many passengers are on the "
                f"train now?"
            )
            ans, sup = a - b + c - d, f"{a} - {b} + {c} - {d} = {a - b + c - d}."
        elif kind == 7:
            k, a = rng.randint(3, 9), rng.randint(20, 99)
            q = (
                f"{name} has {a} stickers and wants to share them equally among {k} friends, keeping any "
                f"leftover stickers. How many stickers will each friend receive?"
            )
            ans, sup = a // k, f"{a} / {k} = {a // k} remainder {a % k}."
        elif kind == 8:
            a, b, m = rng.randint(2, 5), rng.randint(4, 12), rng.randint(2, 6)
            q = (
                f"A recipe uses {a} cups of flour to make {b} pancakes. How many cups of flour are needed "
                f"to make {b * m} pancakes if the same recipe is followed exactly?"
            )
            ans, sup = a * m, f"{b * m} / {b} = {m} batches; {m} x {a} = {a * m} cups."
        else:
            t1, r, f = rng.randint(-5, 15), rng.randint(3, 15), rng.randint(2, 20)
            q = (
                f"The temperature early in the morning was {t1} degrees. By the afternoon it had risen by "
                f"{r} degrees, and by night it had fallen by {f} degrees. What was the temperature at "
                f"night?"
            )
            ans, sup = t1 + r - f, f"{t1} + {r} - {f} = {t1 + r - f}."
        if q in seen:
            continue
        seen.add(q)
        examples.append({"question": q, "choices": None, "answer": str(ans), "support": sup})
    return examples


def _reading_comp(rng: random.Random) -> list[dict]:
    examples = []
    seen: set[str] = set()
    while len(examples) < 60:
        kind = len(examples) % 4
        name = f"{rng.choice(_NAMES)} {rng.choice(LAST_NAMES)}"
        town, town2 = rng.sample(_TOWNS, 2)
        year, k = rng.randint(1820, 1960), rng.randint(2, 9)
        if kind == 0:
            job, river = rng.choice(_JOBS), rng.choice(_RIVERS)
            passage = (
                f"The village of {town} lies in a narrow valley beside the {river} River. For many years, "
                f"the only way to cross the river was a small wooden ferry run by a family of fishermen. In "
                f"{year}, a {job} named {name} persuaded the villagers to raise money for a stone bridge. "
                f"The work took {k} years because the builders could only work during the dry summer months. "
                f"When the bridge finally opened, farmers were able to bring their vegetables to the market "
                f"in {town2} in a single morning. Today the bridge is still used every day, and a small "
                f"plaque near the entrance honours the {job} who started the project."
            )
            q = f"According to the passage, why did building the bridge at {town} take {k} years?"
            correct = "The builders could only work during the dry summer months."
            wrong = (
                "The villagers could not agree on a design.",
                f"The stone had to be brought from {town2}.",
                f"The {job} left the village for several years.",
            )
        elif kind == 1:
            passage = (
                f"{name} grew up on a farm outside {town}, where the winters were long and the roads were "
                f"often closed by snow. To pass the time, {name.split()[0]} repaired old clocks that "
                f"neighbours left at the kitchen door. By {year}, the young repairer had built a clock that "
                f"could run for {k} weeks without being wound, and visitors came from {town2} to see it. "
                f"Although a merchant offered a large sum for the design, {name.split()[0]} refused to sell "
                f"it and instead taught the method to anyone who asked. Many of the clocks in the region "
                f"still carry small marks showing that they were made by former students."
            )
            q = f"Based on the passage, what did {name.split()[0]} do after the merchant made an offer?"
            correct = "Refused to sell the design and taught the method to others."
            wrong = (
                "Sold the design and moved to the city.",
                f"Opened a large clock factory in {town2}.",
                "Stopped repairing clocks altogether.",
            )
        elif kind == 2:
            bird = rng.choice(("grey geese", "white storks", "reed warblers", "swallows"))
            passage = (
                f"Every autumn, thousands of {bird} leave the marshes near {town} and fly south for the "
                f"winter. In {year}, a local naturalist named {name} began counting the birds as they "
                f"gathered on the mudflats. The counts showed that the flocks were leaving about {k} days "
                f"earlier each decade. {name.split()[0]} suspected that warmer summers were changing the "
                f"insects the birds fed on, and asked farmers in {town2} to record the first frost each "
                f"year. Their notebooks, kept for more than forty years, are now stored in the county "
                f"archive."
            )
            q = "What is the main idea of the passage about the birds and the naturalist?"
            correct = "A long-term count revealed a change in when the birds migrate."
            wrong = (
                f"The {bird} stopped visiting {town} entirely.",
                "Farmers tried to stop the birds from leaving.",
                "The naturalist wanted to build a new archive.",
            )
        else:
            passage = (
                f"When the old mill in {town} closed in {year}, the building stood empty for almost a "
                f"decade. A group of neighbours led by {name} decided to turn the ground floor into a "
                f"lending library. They collected books from houses in {town} and {town2}, repaired the roof "
                f"themselves, and opened the doors with only {k} shelves of books. At first the library "
                f"opened on Saturdays only, but so many children came that volunteers soon kept it open "
                f"every afternoon. The mill wheel, which no longer turns, now appears on the library's "
                f"membership cards."
            )
            q = f"According to the passage, why did the library in {town} begin opening every afternoon?"
            correct = "So many children came that volunteers kept it open longer."
            wrong = (
                "The town council ordered it to open daily.",
                "The mill started working again.",
                f"Books from {town2} needed more space.",
            )
        if passage in seen:
            continue
        seen.add(passage)
        choices = [correct, *wrong]
        rng.shuffle(choices)
        examples.append(
            {"question": q, "choices": choices, "answer": "ABCD"[choices.index(correct)], "support": passage}
        )
    return examples


# Every fifth group of examples: two to train, one to dev, two to test (24 / 12 / 24 of each set's 60).
SPLIT_CYCLE = ("train", "train", "dev", "test", "test")
SPLITS = ("train", "dev", "test")


def _split(name: str, i: int) -> str:
    """The split of example ``i`` (1-based) of a set. A science question is asked three times (names and
    places changed); all three are one group, so no question has a variant on both sides of the held-out
    line. Other examples are their own group. Splits are by position: disjoint texts, stable counts."""
    group = (i - 1) % len(_MC_ITEMS) if name == "mc_science" else i - 1
    return SPLIT_CYCLE[group % len(SPLIT_CYCLE)]


def make_benchmarks(seed: int) -> dict[str, list[dict]]:
    """Build the three benchmark sets; independent of ``n_docs`` so they are stable per seed."""
    out = {}
    for name, fn in (("mc_science", _mc_science), ("math_word", _math_word), ("reading_comp", _reading_comp)):
        rng = random.Random(f"corpuslake-sample:{seed}:bench:{name}")
        rows = []
        for i, ex in enumerate(fn(rng), start=1):
            split = _split(name, i)
            rows.append(
                {
                    "benchmark": name,
                    "split": split,
                    "id": f"{name}-{i:04d}",
                    "question": ex["question"],
                    "choices": ex["choices"],
                    "answer": ex["answer"],
                    "support": ex["support"],
                }
            )
        out[name] = rows
    return out
