"""Export shard files written on an executor: gzip'd JSON lines or Parquet, one file per shard id.

``ShardWriter`` takes a partition's rows sorted by (shard, rank) as pandas batches and streams them into
files (memory is bounded by one batch, not by a shard), then reports each file's documents, bytes and
sha256 (``schemas.export.SHARD_SCHEMA``). ``jobs.export`` runs it with ``mapInPandas`` and builds the
manifest from the reports.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from pyspark.sql.types import StructType

from schemas.export import EXPORT_ARROW, PARQUET_COLS, SHARD_SCHEMA

EXTENSIONS = {"jsonl.gz": ".jsonl.gz", "parquet": ".parquet"}
MiB = 1 << 20


def shard_name(shard: int, fmt: str) -> str:
    """The file name of shard ``shard`` in format ``fmt``: ``part-00000.jsonl.gz``."""
    return f"part-{shard:05d}{EXTENSIONS[fmt]}"


class ShardFile:
    """One shard being written: a gzip'd JSONL or a Parquet file, with its counts.

    Args:
        fs: the file system of ``folder``.
        folder: where the file goes (the file system's own path).
        shard: the shard id.
        fmt: ``jsonl.gz`` (rows carry their JSON line in ``_line``) or ``parquet`` (rows carry
            ``PARQUET_COLS``).
    """

    def __init__(self, fs: pafs.FileSystem, folder: str, shard: int, fmt: str):
        self.fs, self.shard, self.fmt = fs, shard, fmt
        self.name = shard_name(shard, fmt)
        self.path = f"{folder}/{self.name}"
        self.stream = fs.open_output_stream(self.path, compression=None)
        self.docs = self.uncompressed = 0
        self.first_rank = self.last_rank = None
        if fmt == "jsonl.gz":
            # No file name or time in the header: the same rows give the same bytes (and sha256).
            self.out = gzip.GzipFile(filename="", mode="wb", fileobj=self.stream, mtime=0)
        else:
            self.out = pq.ParquetWriter(self.stream, EXPORT_ARROW, compression="zstd")

    def write(self, part: pd.DataFrame) -> None:
        """Append rows of this shard, in rank order."""
        if self.fmt == "jsonl.gz":
            self.out.write(("\n".join(part["_line"]) + "\n").encode("utf-8"))
        else:
            self.out.write_table(
                pa.Table.from_pandas(part[list(PARQUET_COLS)], EXPORT_ARROW, preserve_index=False)
            )
        self.docs += len(part)
        self.uncompressed += int(part["line_bytes"].sum())
        if self.first_rank is None:
            self.first_rank = int(part["rank"].iloc[0])
        self.last_rank = int(part["rank"].iloc[-1])

    def close(self) -> dict:
        """Close the file and return its ``SHARD_SCHEMA`` row (size and sha256 read back from the file)."""
        self.out.close()
        self.stream.close()
        digest, size = hashlib.sha256(), 0
        with self.fs.open_input_stream(self.path, compression=None) as fh:
            while chunk := fh.read(MiB):
                digest.update(chunk)
                size += len(chunk)
        return {
            "shard": self.shard,
            "name": self.name,
            "docs": self.docs,
            "bytes": size,
            "uncompressed_bytes": self.uncompressed,
            "sha256": digest.hexdigest(),
            "first_rank": self.first_rank,
            "last_rank": self.last_rank,
        }


class ShardWriter:
    """Writes a partition's rows, sorted by (shard, rank), into one file per shard in ``folder``.

    Args:
        fs: the file system of ``folder``.
        folder: where the files go (the file system's own path).
        fmt: ``jsonl.gz`` or ``parquet``.
    """

    name = "shard_writer"

    def __init__(self, fs: pafs.FileSystem, folder: str, fmt: str):
        self.fs, self.folder, self.fmt = fs, folder, fmt

    def __call__(self, batches: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        """Rows with ``shard``, ``rank``, ``line_bytes`` and the payload → one ``SHARD_SCHEMA`` row per shard
        written, in one frame after the last batch (none when there were no rows)."""
        return by_shard(batches, lambda shard: ShardFile(self.fs, self.folder, shard, self.fmt), SHARD_SCHEMA)


def by_shard(
    batches: Iterable[pd.DataFrame], open_shard: Callable[[int], Any], schema: StructType
) -> Iterator[pd.DataFrame]:
    """Rows sorted by (shard, rank) → ``open_shard(id)`` per shard (an object with ``write(part)`` and
    ``close() -> dict``), each fed its rows in order; yields the ``close()`` rows as one frame with
    ``schema``'s columns after the last batch (nothing when there were no rows). Memory is bounded by one
    batch: a shard is closed as soon as the next one starts."""
    done: list[dict] = []
    current = None
    for pdf in batches:
        if pdf.empty:
            continue
        for shard, part in pdf.groupby("shard", sort=False):
            if current is None or current.shard != shard:
                if current is not None:
                    done.append(current.close())
                current = open_shard(int(shard))
            current.write(part)
    if current is not None:
        done.append(current.close())
    if done:
        yield pd.DataFrame(done, columns=[f.name for f in schema.fields])
