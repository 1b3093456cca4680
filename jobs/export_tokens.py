"""export, ``format: tokens``: one strategy's selection → Megatron indexed-dataset shards (.bin + .idx).

Layout (``<export.path>/tokens/<strategy>/``, beside the file export's ``<export.path>/<strategy>/``)::

    part-00000.bin, part-00000.idx   documents in rank order, each its tokens then EOS, about
                                     export.tokens.shard_tokens tokens per shard
    manifest.json                    documents and tokens per shard with sha256 of both files, the tokenizer
                                     (name, revision, vocabulary, EOS, dtype, sha256 of its files), the
                                     selection's run and table versions

Each shard is one Megatron-LM / NeMo dataset: its data prefix is ``<folder>/part-NNNNN`` (see
``udfs.tokens`` for the byte layout and the README for loading it).

How the shards are made: the texts never reach the driver. Executors tokenize each document
(``udfs.tokens.Tokenize``, the tokenizer loaded once per Python worker); the token arrays are persisted on
the executors, only (doc_id, rank, token count) go through the shard window (``jobs/sql/select_shards.sql``,
the same as the file export's, with tokens for bytes); the rows are then partitioned by shard, sorted by
rank, and each task streams its shards to files (``udfs.tokens.IndexedShardWriter``). The driver collects
only per-shard metadata. The caller (``jobs.export``) writes all of it into a temporary folder and renames
it into place.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Iterator

import pandas as pd
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.queries import run_sql
from jobs.runtime import InputError, UsageError
from jobs.tables import _fs_and_path
from schemas.export import TOKEN_SHARD_SCHEMA
from udfs.tokens import IndexedShardWriter, TokenizerSpec, get_tokenize, load_tokenizer, token_dtype

KEY = "export.tokens.tokenizer"
# The files a Hugging Face tokenizer is made of (whichever of them it has); the tokenizer class's own
# vocabulary file names are added to these. Model weights and configs are not the tokenizer's.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
)
# The vocabulary files tokenizer classes commonly name (watched without loading the tokenizer).
VOCAB_FILES = ("vocab.json", "merges.txt", "vocab.txt", "tokenizer.model", "spiece.model")


def tokenizer_spec(conf) -> TokenizerSpec:
    """``export.tokens`` (a ``TokensExportConf``) → the plain spec executors get."""
    return TokenizerSpec(
        path=conf.tokenizer,
        revision=conf.revision,
        trust_remote_code=conf.trust_remote_code,
        add_special_tokens=conf.add_special_tokens,
    )


def _file_names(tok) -> list[str]:
    names = set(TOKENIZER_FILES) | set(getattr(tok, "vocab_files_names", {}).values())
    return sorted(n for n in names if isinstance(n, str))


def tokenizer_files(spec: TokenizerSpec, tok=None) -> dict[str, str]:
    """The tokenizer's files: name → local path (for a hub name, its copy in the Hugging Face cache)."""
    from transformers.utils import cached_file

    from udfs.model_spec import resolve_path

    path = resolve_path(spec.path)
    tok = tok or load_tokenizer(spec)
    out = {}
    for name in _file_names(tok):
        if os.path.isdir(path):
            found = os.path.join(path, name) if os.path.isfile(os.path.join(path, name)) else None
        else:
            found = cached_file(
                path,
                name,
                revision=spec.revision,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
            )
        if found:
            out[name] = found
    return out


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_tokenizer(spec: TokenizerSpec) -> dict:
    """Load the tokenizer on the driver (no documents) and describe it for the manifest.

    Returns:
        ``{name, revision, class, vocab_size, eos_token, eos_token_id, add_special_tokens, dtype, files,
        sha256}``: ``files`` maps each tokenizer file to its sha256; ``sha256`` hashes those (name and
        digest per line, in name order), so the same files give the same hash wherever they lie.

    Raises:
        UsageError: the tokenizer cannot be loaded or has no EOS token (one line).
    """
    from udfs.model_spec import ModelError, is_local, resolve_path

    try:
        path = resolve_path(spec.path)
    except ModelError as exc:
        raise UsageError(f"{KEY}: {exc}") from None
    if is_local(path) and not os.path.isdir(path):
        raise UsageError(f"{KEY}: tokenizer folder {path} does not exist")
    try:
        tok = load_tokenizer(spec)
    except Exception as exc:  # hub errors, bad JSON, missing files: all mean "not usable"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "" if is_local(path) else " (hub unreachable? point it at a local folder or pre-download it)"
        raise UsageError(f"{KEY}: cannot load the tokenizer {spec.path}: {first}{hint}") from None
    if tok.eos_token_id is None:
        raise UsageError(
            f"{KEY}: the tokenizer {spec.path} has no EOS token, which the export puts after each document"
        )
    files = {name: _sha256(p) for name, p in sorted(tokenizer_files(spec, tok).items())}
    if not files:
        raise UsageError(f"{KEY}: no tokenizer files found for {spec.path} ({', '.join(TOKENIZER_FILES)})")
    combined = "".join(f"{name}\t{digest}\n" for name, digest in files.items())
    return {
        "name": spec.path,
        "revision": spec.revision,
        "class": type(tok).__name__,
        "vocab_size": len(tok),
        "eos_token": tok.eos_token,
        "eos_token_id": int(tok.eos_token_id),
        "add_special_tokens": spec.add_special_tokens,
        "dtype": token_dtype(len(tok)),
        "files": files,
        "sha256": hashlib.sha256(combined.encode("utf-8")).hexdigest(),
    }


def tokenize(spec: TokenizerSpec) -> Callable[[DataFrame], DataFrame]:
    """Rows with ``text`` → the same rows without ``text``, plus ``ids`` (``array<int>``: the document's
    tokens, then EOS) and ``n_tokens`` (their count), computed on the executors."""
    from pyspark.sql.types import ArrayType, IntegerType

    @F.pandas_udf(ArrayType(IntegerType(), containsNull=False))
    def ids(texts: Iterator[pd.Series]) -> Iterator[pd.Series]:
        step = get_tokenize(spec)
        for batch in texts:
            yield step.predict_batch(batch)

    def transform(rows: DataFrame) -> DataFrame:
        keep = [c for c in rows.columns if c != "text"]
        return rows.select(*keep, ids("text").alias("ids")).withColumn("n_tokens", F.size("ids").cast("long"))

    return transform


def token_shards(sizes: DataFrame, shard_tokens: int) -> DataFrame:
    """``[strategy, doc_id, rank, n_tokens]`` → ``[doc_id, shard]``: contiguous shards of ~shard_tokens in
    rank order; a document is never split."""
    narrow = sizes.select("strategy", "doc_id", "rank", F.col("n_tokens").alias("size"))
    return run_sql(sizes.sparkSession, "select_shards", views={"export_sizes": narrow}, target=shard_tokens)


def _writer(folder: str, dtype: str):
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fs, base = _fs_and_path(folder)
        yield from IndexedShardWriter(fs, base, dtype)(batches)

    return run


def write_tokens(
    sel: DataFrame,
    docs: DataFrame,
    tmp_uri: str,
    spec: TokenizerSpec,
    tokenizer: dict,
    shard_tokens: int,
    est_tokens: int,
) -> dict:
    """Tokenize one strategy's selected documents and write their shards into ``tmp_uri``.

    Args:
        sel: the strategy's gold.selection rows.
        docs: silver.documents at the version the selection recorded.
        tmp_uri: the (temporary) folder to write into.
        spec: the tokenizer.
        tokenizer: ``check_tokenizer(spec)`` (its dtype is the shards').
        shard_tokens: target tokens per shard.
        est_tokens: the selection's token estimate, to size the write's tasks.

    Returns:
        The format's part of the manifest: documents, tokens, shards and the tokenizer.

    Raises:
        InputError: the shards written do not add up to the tokenized documents.
    """
    rows = sel.select("doc_id", "strategy", F.col("rank").cast("int").alias("rank")).join(
        docs.select("doc_id", "text"), "doc_id"
    )
    # Tokenized once: the shard window and the write both read these rows, on the executors.
    tokenized = rows.transform(tokenize(spec)).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        total = tokenized.agg(F.count("*").alias("docs"), F.sum("n_tokens").alias("tokens")).first()
        # About one shard per task (estimated from the selection's tokens), as the file export does.
        tasks = max(1, min(4096, math.ceil(est_tokens / shard_tokens)))
        to_write = (
            tokenized.join(token_shards(tokenized, shard_tokens), "doc_id")
            .select("shard", "rank", "ids")
            .repartition(tasks, "shard")
            .sortWithinPartitions("shard", "rank")
        )
        written = to_write.mapInPandas(_writer(tmp_uri, tokenizer["dtype"]), TOKEN_SHARD_SCHEMA).collect()
    finally:
        tokenized.unpersist()
    meta = sorted((r.asDict() for r in written), key=lambda d: d["shard"])
    docs_out, tokens_out = sum(m["docs"] for m in meta), sum(m["tokens"] for m in meta)
    want_docs, want_tokens = int(total["docs"]), int(total["tokens"] or 0)
    if (docs_out, tokens_out) != (want_docs, want_tokens) or [m["shard"] for m in meta] != list(
        range(len(meta))
    ):
        raise InputError(
            f"tokens export wrote {docs_out} documents / {tokens_out} tokens in shards "
            f"{[m['shard'] for m in meta]}, expected {want_docs} / {want_tokens} in contiguous shards; "
            "nothing was replaced"
        )
    return {
        "format": "tokens",
        "documents": docs_out,
        "tokens": tokens_out,  # EOS included: one per document
        "selection_tokens": est_tokens,
        "bytes": sum(m["bin_bytes"] + m["idx_bytes"] for m in meta),
        "dtype": tokenizer["dtype"],
        "shard_tokens": shard_tokens,
        "tokenizer": tokenizer,
        "shards": [{k: v for k, v in m.items() if k != "shard"} for m in meta],
    }


def watch_files(conf) -> list[str]:
    """The export's watched files (``jobs.freshness``): a local tokenizer's folder when the formats include
    tokens, so that a changed tokenizer re-runs the export."""
    if "tokens" not in conf.export.format:
        return []
    from udfs.model_spec import is_local, resolve_path

    path = resolve_path(conf.export.tokens.tokenizer)
    if not is_local(path):
        return []  # a hub name: export.tokens.revision (in the watched conf) says which files
    return [os.path.join(path, name) for name in (*TOKENIZER_FILES, *VOCAB_FILES)]
