"""Tokenized export on an executor: a Hugging Face tokenizer step and the Megatron indexed-dataset writer.

``Tokenize`` turns texts into token ids with an EOS token after each document (what Megatron-LM's
``tools/preprocess_data.py --append-eod`` does). ``IndexedShardWriter`` takes a partition's rows sorted by
(shard, rank) as pandas batches and writes each shard as a Megatron ``.bin`` + ``.idx`` pair (the
``MMapIndexedDataset`` / ``IndexedDataset`` format Megatron-LM and NeMo read), then reports each shard's
documents, tokens, sizes and sha256 (``schemas.export.TOKEN_SHARD_SCHEMA``). ``jobs.export_tokens`` runs
them with ``mapInPandas`` and builds the manifest from the reports.

The format (Megatron-LM ``megatron/core/datasets/indexed_dataset.py``, ``_IndexWriter``), little-endian:

* ``<prefix>.bin``: every sequence's token ids back to back, in the index's dtype, nothing else.
* ``<prefix>.idx``: the 9-byte magic ``MMIDIDX\\x00\\x00``; version ``<Q`` = 1; the dtype code ``<B``
  (``DTYPE_CODES``: 8 = uint16, 4 = int32); the sequence count ``<Q``; the document-index count ``<Q``;
  then the sequence lengths (int32, one per sequence), the sequence pointers (int64 byte offsets into
  ``.bin``), and the document indices (int64: ``[0, ...]``, the sequence index where each document ends).

Here one document is one sequence (its tokens and the EOS), so the document indices are ``0, 1, ..., n``:
what ``preprocess_data.py`` writes without ``--split-sentences``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pyarrow.fs as pafs

from schemas.export import TOKEN_SHARD_SCHEMA
from udfs.shards import by_shard

INDEX_MAGIC = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
# Megatron's DType enum (the code written to .idx): only the two token dtypes are written here.
DTYPE_CODES = {"uint16": 8, "int32": 4}
# Megatron's DType.optimal_dtype: uint16 below 65,500 tokens in the vocabulary, else int32.
UINT16_VOCAB_LIMIT = 65500


def token_dtype(vocab_size: int) -> str:
    """``uint16`` when the vocabulary fits (Megatron's rule: fewer than 65,500 tokens), else ``int32``."""
    return "uint16" if vocab_size < UINT16_VOCAB_LIMIT else "int32"


def shard_prefix(shard: int) -> str:
    """The data prefix of shard ``shard`` (Megatron's ``--data-path`` names it without extension)."""
    return f"part-{shard:05d}"


def index_bytes(lengths: np.ndarray, dtype: str) -> bytes:
    """The ``.idx`` file of sequences with ``lengths`` tokens each, one sequence per document."""
    lengths = np.asarray(lengths, dtype=np.int32)
    n = len(lengths)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(n, dtype=np.int64)
    if n:
        np.cumsum(lengths[:-1].astype(np.int64) * itemsize, out=pointers[1:])
    doc_index = np.arange(n + 1, dtype=np.int64)
    head = INDEX_MAGIC + struct.pack("<Q", INDEX_VERSION) + struct.pack("<B", DTYPE_CODES[dtype])
    counts = struct.pack("<Q", n) + struct.pack("<Q", n + 1)
    return head + counts + lengths.tobytes() + pointers.tobytes() + doc_index.tobytes()


@dataclass(frozen=True)
class TokenizerSpec:
    """The export's tokenizer as executors need it (plain, picklable).

    Args:
        path: a local folder, ``package:<module>`` or a hub name (as model entries take).
        revision: hub revision.
        trust_remote_code: off unless the profile turns it on.
        add_special_tokens: let the tokenizer add its own special tokens (e.g. a BOS) to each document, as
            Megatron-LM's Hugging Face tokenizer wrapper does; the EOS after each document is added anyway.
    """

    path: str
    revision: str = "main"
    trust_remote_code: bool = False
    add_special_tokens: bool = True


def load_tokenizer(spec: TokenizerSpec):
    """The ``AutoTokenizer`` of ``spec``: local folders without the hub."""
    from transformers import AutoTokenizer

    from udfs.model_spec import is_local, resolve_path

    path = resolve_path(spec.path)
    return AutoTokenizer.from_pretrained(
        path,
        revision=spec.revision,
        trust_remote_code=spec.trust_remote_code,
        local_files_only=is_local(path),
    )


class Tokenize:
    """Texts → token ids, each document followed by the tokenizer's EOS.

    Args:
        spec: the tokenizer.
    """

    name = "tokenize"

    def __init__(self, spec: TokenizerSpec):
        self.spec = spec
        self._tok = None

    @property
    def tokenizer(self):
        if self._tok is None:
            self._tok = load_tokenizer(self.spec)
        return self._tok

    def predict_batch(self, texts: pd.Series) -> pd.Series:
        """One int32 array per text (Spark's ``array<int>``): its tokens, then EOS."""
        tok = self.tokenizer
        # verbose=False: documents longer than the model's context are expected here, not a mistake.
        ids = tok(
            list(texts),
            add_special_tokens=self.spec.add_special_tokens,
            return_attention_mask=False,
            verbose=False,
        )["input_ids"]
        eos = tok.eos_token_id
        return pd.Series(
            [np.asarray([*x, eos], dtype=np.int32) for x in ids], index=texts.index, dtype=object
        )


@lru_cache(maxsize=4)
def get_tokenize(spec: TokenizerSpec) -> Tokenize:
    """One ``Tokenize`` per Python worker and spec: the tokenizer loads once, not once per task."""
    return Tokenize(spec)


class IndexedShard:
    """One shard being written: ``<prefix>.bin`` streamed, ``<prefix>.idx`` written at close.

    Args:
        fs: the file system of ``folder``.
        folder: where the files go (the file system's own path).
        shard: the shard id.
        dtype: ``uint16`` or ``int32``.
    """

    def __init__(self, fs: pafs.FileSystem, folder: str, shard: int, dtype: str):
        self.fs, self.folder, self.shard, self.dtype = fs, folder, shard, dtype
        self.prefix = shard_prefix(shard)
        self.stream = fs.open_output_stream(f"{folder}/{self.prefix}.bin", compression=None)
        self.digest = hashlib.sha256()
        # One int per document of this shard: bounded by the shard's size, which the profile sets.
        self.lengths: list[int] = []
        self.first_rank = self.last_rank = None

    def write(self, part: pd.DataFrame) -> None:
        """Append rows of this shard (``ids`` arrays), in rank order."""
        seqs = [np.asarray(x, dtype=self.dtype) for x in part["ids"]]
        data = np.concatenate(seqs).tobytes() if seqs else b""
        self.stream.write(data)
        self.digest.update(data)
        self.lengths.extend(len(s) for s in seqs)
        if self.first_rank is None:
            self.first_rank = int(part["rank"].iloc[0])
        self.last_rank = int(part["rank"].iloc[-1])

    def close(self) -> dict:
        """Close ``.bin``, write ``.idx``, return the shard's ``TOKEN_SHARD_SCHEMA`` row."""
        self.stream.close()
        idx = index_bytes(np.asarray(self.lengths, dtype=np.int32), self.dtype)
        with self.fs.open_output_stream(f"{self.folder}/{self.prefix}.idx", compression=None) as fh:
            fh.write(idx)
        tokens = int(sum(self.lengths))
        return {
            "shard": self.shard,
            "name": self.prefix,
            "docs": len(self.lengths),
            "tokens": tokens,
            "bin_bytes": tokens * np.dtype(self.dtype).itemsize,
            "bin_sha256": self.digest.hexdigest(),
            "idx_bytes": len(idx),
            "idx_sha256": hashlib.sha256(idx).hexdigest(),
            "first_rank": self.first_rank,
            "last_rank": self.last_rank,
        }


class IndexedShardWriter:
    """Writes a partition's rows, sorted by (shard, rank), as one ``.bin`` + ``.idx`` pair per shard.

    Args:
        fs: the file system of ``folder``.
        folder: where the files go (the file system's own path).
        dtype: ``uint16`` or ``int32`` (``token_dtype``).
    """

    name = "indexed_shard_writer"

    def __init__(self, fs: pafs.FileSystem, folder: str, dtype: str):
        if dtype not in DTYPE_CODES:
            raise ValueError(f"token dtype {dtype!r}: expected one of {sorted(DTYPE_CODES)}")
        self.fs, self.folder, self.dtype = fs, folder, dtype

    def __call__(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Rows with ``shard``, ``rank`` and ``ids`` → one ``TOKEN_SHARD_SCHEMA`` row per shard written,
        in one frame after the last batch (none when there were no rows)."""
        return by_shard(
            batches, lambda shard: IndexedShard(self.fs, self.folder, shard, self.dtype), TOKEN_SHARD_SCHEMA
        )
