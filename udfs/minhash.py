"""MinHash signatures of word n-gram shingles, computed on executors. Pure Python + numpy.

A document's shingles are its distinct word ``ngram``-grams over lower-cased ``\\w+`` tokens (the convention
the sample corpus records its planted Jaccard values in). Each shingle is hashed with CRC-32, which is the
same in every process; Python's ``hash()`` is salted per interpreter, so two executors would disagree.

``MinHasher`` keeps ``num_perm`` universal hash functions ``h_i(x) = (a_i * x + b_i) mod p`` with the
Mersenne prime ``p = 2**31 - 1``: ``x < 2**32`` and ``a_i < 2**31`` keep every product below ``2**63``, so
the whole shingles × permutations matrix is exact in ``uint64``. Real signature values are therefore
below ``p``; ``EMPTY`` (``0xFFFFFFFF``) is reserved for documents without a single token.

``minhash_udf`` wraps a ``MinHasher`` in an iterator pandas UDF so each task draws its permutations once.
``ShingleSet`` gives each document its shingle set as 64-bit hashes, once per document, for the exact
verification of candidate pairs (which then compares sets in SQL); ``PairJaccard`` is the same Jaccard on two
texts, row by row.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Iterator
from functools import lru_cache

import numpy as np
import pandas as pd

MERSENNE_PRIME = (1 << 31) - 1
EMPTY = np.uint32(0xFFFFFFFF)
# Shingles hashed against all permutations at once; bounds the uint64 matrix to ~2 MB at 128 perms,
# so one very long document cannot blow up a Python worker's memory.
_CHUNK = 2048
_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """Lower-cased ``\\w+`` word tokens."""
    return _WORD.findall(text.lower())


def shingles(text: str | None, ngram: int = 5) -> set[str]:
    """Distinct word ``ngram``-grams, each joined with single spaces.

    A document with fewer than ``ngram`` tokens is one shingle (all its tokens), so short texts still
    compare equal to their copies; text without tokens has no shingles.
    """
    # Arrow hands a null text to pandas as None (or NaN): no tokens.
    toks = tokens(text) if isinstance(text, str) else []
    if len(toks) < ngram:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + ngram]) for i in range(len(toks) - ngram + 1)}


def shingle_hashes(text: str | None, ngram: int = 5) -> np.ndarray:
    """CRC-32 of each distinct shingle (UTF-8), sorted and distinct, as ``uint32``; empty for empty text."""
    hashes = [zlib.crc32(s.encode("utf-8", "surrogatepass")) for s in shingles(text, ngram)]
    return np.unique(np.asarray(hashes, dtype=np.uint32))


def shingle_hashes64(text: str | None, ngram: int = 5) -> np.ndarray:
    """64-bit hashes (BLAKE2b, 8 bytes, as signed ``int64``) of each distinct shingle, sorted and distinct.

    The exact-verification key: two distinct shingles share a hash with probability 2**-64, so for two
    documents of s shingles each the Jaccard of their hash sets differs from that of their shingle sets with
    probability below 2·s²/2**64 (1e-11 at s = 10,000). CRC-32 (``shingle_hashes``) would make that about
    5% at 10,000 shingles; it is fine for MinHash, whose estimate is noisier than that anyway.
    """
    hashes = [
        int.from_bytes(
            hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little", signed=True
        )
        for s in shingles(text, ngram)
    ]
    return np.unique(np.asarray(hashes, dtype=np.int64))


def jaccard(text_a: str | None, text_b: str | None, ngram: int = 5) -> float:
    """Exact Jaccard similarity of two texts' shingle sets; 1.0 when both have none (as the sample truth)."""
    a, b = shingles(text_a, ngram), shingles(text_b, ngram)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


class ShingleSet:
    """Each text's shingle set as sorted distinct 64-bit hashes (``shingle_hashes64``): near dedup's exact
    verification shingles each candidate document once with it, then compares the sets of each pair in SQL
    (``jobs.methods.dedup_lsh.verify_pairs_exact``), instead of shingling both texts again for every pair.

    Args:
        ngram: words per shingle, as for the signatures.
    """

    name = "shingle_set"

    def __init__(self, ngram: int = 5):
        self.ngram = ngram

    def __call__(self, texts: pd.Series) -> pd.Series:
        """``shingle_hashes64`` of each text, as ``int64`` arrays (empty for text without tokens)."""
        return pd.Series([shingle_hashes64(t, self.ngram) for t in texts], index=texts.index, dtype=object)


class PairJaccard:
    """Exact shingle-set Jaccard of text pairs, row by row, on pandas: what near dedup's exact verification
    computes (there from ``ShingleSet`` hashes, once per document, rather than from each pair's texts).

    Args:
        ngram: words per shingle, as for the signatures.
    """

    name = "pair_jaccard"

    def __init__(self, ngram: int = 5):
        self.ngram = ngram

    def __call__(self, text_a: pd.Series, text_b: pd.Series) -> pd.Series:
        """``jaccard`` of each ``(text_a[i], text_b[i])``, as float64."""
        return pd.Series(
            [jaccard(x, y, self.ngram) for x, y in zip(text_a, text_b, strict=True)], dtype="float64"
        )


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """The share of positions where two signatures agree: an unbiased estimate of their Jaccard."""
    a, b = np.asarray(sig_a), np.asarray(sig_b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"signatures must be non-empty and of equal length, got {a.shape} and {b.shape}")
    return float(np.mean(a == b))


class MinHasher:
    """MinHash signatures of word-shingle sets.

    Args:
        num_perm: signature length (number of hash permutations).
        ngram: words per shingle.
        seed: seeds ``np.random.default_rng`` for the permutation coefficients; the same seed gives the
            same signatures in every process.
    """

    def __init__(self, num_perm: int = 128, ngram: int = 5, seed: int = 42):
        if num_perm < 1 or ngram < 1:
            raise ValueError(f"num_perm and ngram must be positive, got {num_perm} and {ngram}")
        self.num_perm, self.ngram, self.seed = num_perm, ngram, seed
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)
        self._b = rng.integers(0, MERSENNE_PRIME, size=num_perm, dtype=np.uint64)

    def signature(self, text: str | None) -> np.ndarray:
        """The ``uint32`` signature of ``text``, of length ``num_perm``.

        Text without any token (empty, whitespace, punctuation only, None) gets all ``EMPTY``
        (``0xFFFFFFFF``), a value no real signature holds: two such documents agree everywhere, so callers
        that must not link empty documents drop them first (``jobs.methods.dedup.near_duplicates`` does).
        """
        x = shingle_hashes(text, self.ngram).astype(np.uint64)
        if x.size == 0:
            return np.full(self.num_perm, EMPTY, dtype=np.uint32)
        sig = np.full(self.num_perm, MERSENNE_PRIME, dtype=np.uint64)
        for start in range(0, x.size, _CHUNK):
            block = (x[start : start + _CHUNK, None] * self._a + self._b) % MERSENNE_PRIME
            np.minimum(sig, block.min(axis=0), out=sig)
        return sig.astype(np.uint32)

    def signature_batch(self, texts: pd.Series) -> pd.Series:
        """Signatures of a batch as ``int32`` arrays: the bits of the ``uint32`` values, as Spark stores them.

        Real values are below ``2**31 - 1`` and so unchanged; ``EMPTY`` reads as ``-1``.
        """
        return pd.Series([self.signature(t).view(np.int32) for t in texts], index=texts.index, dtype=object)


@lru_cache(maxsize=8)
def _hasher(num_perm: int, ngram: int, seed: int) -> MinHasher:
    # Python workers are reused across tasks; keep the permutations rather than redraw them per task.
    return MinHasher(num_perm, ngram, seed)


def minhash_udf(num_perm: int = 128, ngram: int = 5, seed: int = 42):
    """An iterator pandas UDF: a string column → ``array<int>`` signatures (see ``signature_batch``).

    Args:
        num_perm: signature length.
        ngram: words per shingle.
        seed: permutation seed; every caller comparing signatures must use the same one.
    """
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import ArrayType, IntegerType

    @pandas_udf(ArrayType(IntegerType(), containsNull=False))
    def minhash(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
        hasher = _hasher(num_perm, ngram, seed)
        for batch in texts:
            yield hasher.signature_batch(batch)

    return minhash
