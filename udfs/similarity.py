"""Blockwise cosine similarity of document embeddings to benchmark targets, on an executor.

Embeddings are L2-normalized, so cosine = dot product. One ``TargetScan`` walks a partition's batches:
for each batch it multiplies the documents by the targets in blocks of ``block`` targets (bounded
memory whatever the number of targets) and returns each document's max cosine per benchmark; across
batches it keeps each target's ``top_k`` documents by (cosine desc, doc_id asc), the candidates from which
the Spark side computes global ranks in the same order (a target's global top-k is within the union of the
partitions' top-k; exact cosine ties at a partition's cut keep the smallest doc_ids, so this holds for ties
too).
``SimilarityScan`` runs one over a partition's pandas batches and yields the rows ``jobs.score_similarity``
ranks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd


class TargetScan:
    """Per-partition state of the similarity scan.

    Args:
        targets: ``[n_targets, d]`` float32, L2-normalized, grouped by benchmark (contiguous).
        bench_starts: index of each benchmark's first target in ``targets`` (ascending, starts at 0).
        top_k: candidates kept per target (None: all documents, exact ranks for small pools).
        block: targets per matrix product.
    """

    def __init__(self, targets: np.ndarray, bench_starts: list[int], top_k: int | None, block: int = 1024):
        self.targets = np.ascontiguousarray(targets, dtype=np.float32)
        self.starts = np.asarray(bench_starts, dtype=np.int64)
        self.top_k = top_k
        self.block = block
        n = len(self.targets)
        self.cand_cos = np.empty((n, 0), dtype=np.float32)
        self.cand_ids = np.empty((n, 0), dtype=object)

    def add(self, emb: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Scan one batch: ``[b, d]`` embeddings and their doc ids → ``[b, n_benchmarks]`` max cosine."""
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        b, n_t = len(emb), len(self.targets)
        out = np.full((b, len(self.starts)), -np.inf, dtype=np.float32)
        ids = np.asarray(ids, dtype=object)
        new_cos, new_ids = [], []
        for s in range(0, n_t, self.block):
            e = min(s + self.block, n_t)
            sims = emb @ self.targets[s:e].T  # [b, block]
            # Max per benchmark over this block's columns: reduceat over the segment starts inside it.
            segs = np.unique(np.clip(self.starts, s, e))
            segs = segs[segs < e]
            red = np.maximum.reduceat(sims, segs - s, axis=1)
            bench = np.searchsorted(self.starts, segs, side="right") - 1
            out[:, bench] = np.maximum(out[:, bench], red)
            cos, who = self._keep(
                np.concatenate([self.cand_cos[s:e], sims.T], axis=1),
                np.concatenate([self.cand_ids[s:e], np.broadcast_to(ids, (e - s, b))], axis=1),
            )
            new_cos.append(cos)
            new_ids.append(who)
        if n_t:
            width = max(c.shape[1] for c in new_cos)
            self.cand_cos = np.concatenate([_pad(c, width, -np.inf) for c in new_cos])
            self.cand_ids = np.concatenate([_pad(c, width, None) for c in new_ids])
        return out

    def _keep(self, cos: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's ``top_k`` by (cosine desc, doc_id asc): the order the Spark side ranks by."""
        k = self.top_k
        if k is None or cos.shape[1] <= k:
            return cos, ids
        idx = np.argpartition(-cos, k - 1, axis=1)[:, :k]
        # argpartition keeps an arbitrary subset of the documents tied at the cut (cosine equal to the k-th
        # largest); the ranks break ties by doc_id, so where some tied ones were left out, the row keeps the
        # smallest doc_ids among them instead. Padding (-inf, no id) never reaches a finite cut.
        kept = np.take_along_axis(cos, idx, axis=1)
        cut = kept.min(axis=1)
        tied, tied_kept = (cos == cut[:, None]).sum(axis=1), (kept == cut[:, None]).sum(axis=1)
        for r in np.nonzero((tied > tied_kept) & np.isfinite(cut))[0]:
            above = np.nonzero(cos[r] > cut[r])[0]
            at_cut = sorted(np.nonzero(cos[r] == cut[r])[0], key=lambda j, r=r: ids[r, j])
            idx[r] = np.concatenate([above, np.asarray(at_cut[: k - len(above)], dtype=above.dtype)])
        return np.take_along_axis(cos, idx, axis=1), np.take_along_axis(ids, idx, axis=1)

    def candidates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(target index, doc id, cosine)`` of every kept candidate."""
        t, j = np.nonzero(self.cand_ids != None)  # noqa: E711 (elementwise on an object array)
        return t, self.cand_ids[t, j], self.cand_cos[t, j]


def _pad(a: np.ndarray, width: int, fill) -> np.ndarray:
    if a.shape[1] == width:
        return a
    out = np.full((a.shape[0], width), fill, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


class SimilarityScan:
    """The similarity scan of one partition, as rows: ``__call__`` takes its ``[doc_id, embedding]`` batches.

    It yields, per batch, a ``max`` row per (document, benchmark) with the document's max cosine over the
    benchmark's targets (``target`` -1), then, after the last batch, a ``cand`` row per kept candidate
    (``TargetScan.candidates``) with its target index and cosine. Columns: ``kind, doc_id, benchmark,
    target, cosine``.

    Args:
        targets: ``[n_targets, d]`` float32, L2-normalized, grouped by benchmark.
        target_bench: each target's benchmark, sorted (so each benchmark's targets are contiguous).
        top_k: candidates kept per target (None: all documents).
        block: targets per matrix product.
    """

    name = "similarity_scan"

    def __init__(self, targets: np.ndarray, target_bench: list[str], top_k: int | None, block: int = 1024):
        self.names = sorted(set(target_bench))
        self.target_bench = target_bench
        self.scan = TargetScan(targets, [target_bench.index(b) for b in self.names], top_k, block)

    def __call__(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """The scan's rows for a partition's batches (see the class docstring)."""
        names = np.asarray(self.names, dtype=object)
        for pdf in batches:
            if pdf.empty:
                continue
            ids = pdf["doc_id"].to_numpy(dtype=object)
            best = self.scan.add(np.stack(pdf["embedding"].to_numpy()), ids)
            yield pd.DataFrame(
                {
                    "kind": "max",
                    "doc_id": np.repeat(ids, len(names)),
                    "benchmark": np.tile(names, len(ids)),
                    "target": -1,
                    "cosine": best.reshape(-1).astype(np.float64),
                }
            )
        ti, di, cos = self.scan.candidates()
        yield pd.DataFrame(
            {
                "kind": "cand",
                "doc_id": di,
                "benchmark": (
                    np.asarray(self.target_bench, dtype=object)[ti] if len(ti) else np.empty(0, dtype=object)
                ),
                "target": ti.astype(np.int32),
                "cosine": cos.astype(np.float64),
            }
        )
