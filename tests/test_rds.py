"""RDS+'s round robin over tasks: a hand-worked example, the plain loop, and the exact prefix then the
position interleave past it."""

from __future__ import annotations

import numpy as np

from jobs.methods.rds import rds_order, round_robin

# Hand-worked: tasks arc, boolq, csqa (name order). Documents by max cosine, best first:
#   arc    a .9, b .8, c .7, e .3, d .2, f .1, g .0
#   boolq  a .95, d .9, b .5, c .4, e .3, f .2, g .0
#   csqa   c .9, f .9 (tie: c first by doc_id), e .8, a .5, b .1, d .05, g .0
# Round 1: arc a; boolq's a is taken → d; csqa c.  Round 2: arc b; boolq's b and c are taken → e;
# csqa's c is taken → f.  Round 3: arc's next free one is g; every document is then picked.
RDS_COS = {
    "arc": {"a": 0.9, "b": 0.8, "c": 0.7, "e": 0.3, "d": 0.2, "f": 0.1, "g": 0.0},
    "boolq": {"a": 0.95, "d": 0.9, "b": 0.5, "c": 0.4, "e": 0.3, "f": 0.2, "g": 0.0},
    "csqa": {"c": 0.9, "f": 0.9, "e": 0.8, "a": 0.5, "b": 0.1, "d": 0.05, "g": 0.0},
}
RDS_EXPECTED = [
    ("a", "arc", 1),
    ("d", "boolq", 1),
    ("c", "csqa", 1),
    ("b", "arc", 2),
    ("e", "boolq", 2),
    ("f", "csqa", 2),
    ("g", "arc", 3),
]


def test_rds_round_robin_hand_example(spark):
    rows = [(d, b, c) for b, docs in reversed(RDS_COS.items()) for d, c in docs.items()]
    sim = spark.createDataFrame(rows, "doc_id string, benchmark string, max_cosine double")
    got = [(r["doc_id"], r["benchmark"], r["round"]) for r in rds_order(sim).orderBy("pick").collect()]
    assert got == RDS_EXPECTED


def _naive_round_robin(lists, limit):
    chosen, out, ptr, rnd = set(), [], [0] * len(lists), 0
    total = min(limit, len({d for lst in lists for d in lst}))
    while len(out) < total:
        rnd += 1
        for t, lst in enumerate(lists):
            while ptr[t] < len(lst) and lst[ptr[t]] in chosen:
                ptr[t] += 1
            if len(out) < total and ptr[t] < len(lst):
                chosen.add(lst[ptr[t]])
                out.append((lst[ptr[t]], t, rnd))
    return out


def test_round_robin_matches_the_plain_loop():
    rng = np.random.default_rng(4)
    n = 3000
    base = rng.permutation(n)
    # Lists that agree a lot (long runs of taken documents to skip) plus a short list that runs out.
    lists = [base, np.roll(base, 7), base[::-1].copy(), rng.permutation(n)[:50]]
    for limit in (n, 1234):
        docs, tasks, rounds = round_robin(lists, n, limit)
        assert list(zip(docs.tolist(), tasks.tolist(), rounds.tolist(), strict=True)) == _naive_round_robin(
            [lst.tolist() for lst in lists], limit
        )
    docs, _, _ = round_robin(lists, n)
    assert sorted(docs.tolist()) == list(range(n))


def test_rds_order_exact_prefix_then_position_interleave(spark):
    """The first exact_picks picks are the round robin's; the rest follow the position interleave."""
    rng = np.random.default_rng(5)
    tasks, n = ["arc", "boolq", "csqa"], 120
    cos = rng.random((3, n)).round(2)  # ties, broken by doc_id
    rows = [(f"d{i:03d}", b, float(cos[t, i])) for t, b in enumerate(tasks) for i in range(n)]
    sim = spark.createDataFrame(rows, "doc_id string, benchmark string, max_cosine double")
    lists = [sorted(range(n), key=lambda i, t=t: (-cos[t, i], i)) for t in range(3)]
    exact = [(f"d{d:03d}", tasks[t], r) for d, t, r in _naive_round_robin(lists, n)]

    full = [(r["doc_id"], r["benchmark"], r["round"]) for r in rds_order(sim).orderBy("pick").collect()]
    assert full == exact  # the default exact_picks covers this pool: the whole order is exact

    got = rds_order(sim, exact_picks=30).orderBy("pick").collect()
    assert [r["pick"] for r in got] == list(range(1, n + 1))
    assert [(r["doc_id"], r["benchmark"], r["round"]) for r in got[:30]] == exact[:30]
    placed = {r["doc_id"] for r in got[:30]}
    slot: dict[str, int] = {}
    for t in range(3):
        for p, i in enumerate(lists[t]):
            d = f"d{i:03d}"
            if d not in placed:
                slot[d] = min(slot.get(d, 1 << 60), p * 3 + t)
    want = sorted(slot, key=lambda d: (slot[d], d))
    assert [(r["doc_id"], r["benchmark"], r["round"]) for r in got[30:]] == [
        (d, tasks[slot[d] % 3], slot[d] // 3 + 1) for d in want
    ]
    assert rds_order(sim, limit=50, exact_picks=30).count() == 50
