"""export: gold.selection + silver.documents → sharded JSONL.gz or Parquet files, and/or Megatron token
shards, and a manifest per strategy and format.

Layout (``export.path``, default a folder ``export`` beside the warehouse)::

    <path>/<strategy>/part-00000.jsonl.gz   (or .parquet) documents in rank order, ~export.shard_mb each
    <path>/<strategy>/manifest.json         documents, tokens, shards (name, docs, bytes, sha256),
                                            composition by domain and source, selection run and versions
    <path>/tokens/<strategy>/part-00000.bin, .idx, manifest.json
                                            ``format: tokens`` (``jobs.export_tokens``)

``export.format`` is one format or a list (``[jsonl.gz, tokens]``): each is written in the same run, from
the same reads.

Each line / row holds doc_id, strategy, rank, url, domain, source, n_tokens (the selection's tokens) and
text; a chat record's JSON line holds ``messages`` (``[{"role", "content"}]``, as silver keeps them) in
place of text, and Parquet rows hold both (messages null for text records). JSON lines are UTF-8 with
non-ASCII characters as is (Spark's ``to_json``; nulls kept as null).

How the shards are made: the texts never reach the driver. Each document's JSON line is built on the
executors; only (doc_id, rank, line bytes) go through one window (``jobs/sql/select_shards.sql``) that
assigns shard ids by cumulative uncompressed bytes in rank order; the rows are then partitioned by shard,
sorted by rank, and each executor task streams its shards to files (``mapInPandas``: memory is bounded by
one Arrow batch, not by a shard). The driver collects only per-shard metadata (docs, bytes, sha256).
Parquet shards are cut by the same JSON-line sizes, so their "uncompressed" size is that estimate.

Texts come from silver.documents at the version the selection recorded, so an export of a selection is
the same whenever it runs (as long as that version is not vacuumed). Gzip headers carry no name or time,
so the same selection gives byte-identical JSONL shards.

Each strategy's folder (one per format) is replaced atomically: everything is written into a hidden
temporary folder next to it, checked (exported documents = selected documents), then renamed into place,
so a failure never leaves a half-written export. Executors write the shards, so ``export.path`` must be a
folder every executor can write (any folder in local mode; a shared mount such as /dbfs or /Volumes on a
cluster). Object-store URIs are refused: there a folder rename is a copy, not an atomic swap.

Run it:  corpuslake stage export --conf conf/local.yaml
"""

from __future__ import annotations

import json
import math
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import pyarrow.fs as pafs
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import export_tokens, freshness
from jobs.config import Conf
from jobs.queries import parse_versions, run_sql
from jobs.runtime import InputError, JobContext, UsageError, job_parser, run_job
from jobs.tables import _fs_and_path, safe_name
from schemas import gold, silver
from schemas.export import CHAT_COLS, EXPORT_COLS, PARQUET_COLS, SHARD_SCHEMA
from udfs.shards import MiB, ShardWriter

STAGE = "export"
READS = (gold.SELECTION, silver.DOCUMENTS)


def preflight(conf: Conf) -> None:
    """The export folder must be a local or mounted path (the atomic swap is a directory rename), and the
    tokenizer of ``format: tokens`` must load."""
    root = export_root(conf)
    if "://" in root:
        raise UsageError(
            f"{conf.source_file or 'profile'}: export.path {root!r} is an object-store URI; set export.path "
            "to a local or mounted folder (e.g. /dbfs/... or /Volumes/...), where a folder can be renamed "
            "atomically and every executor can write"
        )
    if "tokens" in conf.export.format:  # a missing or unusable tokenizer fails before Spark starts
        export_tokens.check_tokenizer(export_tokens.tokenizer_spec(conf.export.tokens))


def export_root(conf: Conf) -> str:
    """``export.path``, or a folder ``export`` beside the warehouse."""
    if conf.export.path:
        p = conf.export.path
        return p.rstrip("/") if "://" in p else os.path.abspath(p)
    wh = conf.storage.warehouse.rstrip("/")
    if "://" in wh:
        return wh.rsplit("/", 1)[0] + "/export"
    return os.path.join(os.path.dirname(os.path.abspath(wh)), "export")


def export_rows(selection: DataFrame, docs: DataFrame) -> DataFrame:
    """One strategy's selection joined to its documents: the export columns (``PARQUET_COLS``) plus ``_line``
    (the document's JSON line: a chat record's has ``messages`` in place of ``text``) and ``line_bytes``
    (its UTF-8 bytes + the newline)."""
    joined = selection.select(
        "doc_id",
        "strategy",
        F.col("rank").cast("int").alias("rank"),
        "domain",
        F.col("tokens").cast("long").alias("n_tokens"),
    ).join(docs.select("doc_id", "url", "source", "text", "format", "messages"), "doc_id")
    opts = {"ignoreNullFields": "false"}
    line = F.when(
        F.col("format") == "chat", F.to_json(F.struct(*[F.col(c) for c in CHAT_COLS]), opts)
    ).otherwise(F.to_json(F.struct(*[F.col(c) for c in EXPORT_COLS]), opts))
    return joined.select(*PARQUET_COLS, line.alias("_line")).withColumn(
        "line_bytes", (F.octet_length("_line") + 1).cast("long")
    )


def assign_shards(rows: DataFrame, shard_bytes: int) -> DataFrame:
    """``[strategy, doc_id, rank, line_bytes]`` → ``[doc_id, shard]``: contiguous shards of ~shard_bytes in
    rank order (one strategy's rows)."""
    sizes = rows.select("strategy", "doc_id", "rank", F.col("line_bytes").alias("size"))
    return run_sql(rows.sparkSession, "select_shards", views={"export_sizes": sizes}, target=shard_bytes)


def shard_writer(folder: str, fmt: str) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    """A ``mapInPandas`` function: rows sorted by (shard, rank) → shard files in ``folder``; yields one
    metadata row per shard written (``SHARD_SCHEMA``; ``udfs.shards.ShardWriter``)."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fs, base = _fs_and_path(folder)
        yield from ShardWriter(fs, base, fmt)(batches)

    return run


def composition(selected: DataFrame, docs: DataFrame) -> dict:
    """Documents and tokens by domain and by source, the totals, and doc_ids missing from ``docs``, in one
    aggregation (a cube over domain × source).

    Args:
        selected: ``[doc_id, domain, tokens]`` of one strategy.
        docs: silver.documents rows ``[doc_id, source, ...]``.

    Returns:
        ``{"domain": [{domain, docs, tokens}], "source": [...], "docs": n, "tokens": t, "missing": [ids]}``;
        lists are sorted by tokens desc, then value; missing holds at most 5 examples.
    """
    ids = docs.select("doc_id", "source", F.lit(True).alias("_in"))
    got = (
        selected.select("doc_id", "domain", "tokens")
        .join(ids, "doc_id", "left")
        .cube("domain", "source")
        .agg(
            F.grouping_id().alias("g"),
            F.count("*").alias("docs"),
            F.sum("tokens").alias("tokens"),
            F.slice(F.collect_list(F.when(F.col("_in").isNull(), F.col("doc_id"))), 1, 5).alias("missing"),
        )
        .collect()
    )
    # grouping_id bits: 1 = source rolled up (rows per domain), 2 = domain rolled up, 3 = the total.
    out: dict = {"docs": 0, "tokens": 0, "missing": []}
    for key, g in (("domain", 1), ("source", 2)):
        part = [
            {key: r[key], "docs": int(r["docs"]), "tokens": int(r["tokens"] or 0)} for r in got if r["g"] == g
        ]
        out[key] = sorted(part, key=lambda d, k=key: (-d["tokens"], d[k] is None, d[k] or ""))
    for r in got:
        if r["g"] == 3:
            out.update(docs=int(r["docs"]), tokens=int(r["tokens"] or 0), missing=sorted(r["missing"]))
    return out


def selection_info(selection: DataFrame) -> dict:
    """Per strategy of gold.selection: its select run ids, table_versions JSONs and selected_at."""
    rows = (
        selection.groupBy("strategy")
        .agg(
            F.collect_set("run_id").alias("runs"),
            F.collect_set("table_versions").alias("versions"),
            # As text in the session time zone (UTC): collected timestamps would be naive local times.
            F.date_format(F.min("selected_at"), "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX").alias("selected_at"),
        )
        .collect()
    )
    return {r["strategy"]: r for r in rows}


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _replace_folder(fs: pafs.FileSystem, tmp: str, final: str) -> None:
    # Two renames: the old folder steps aside, the new one takes its place, then the old one goes.
    old = None
    if _exists(fs, final):
        old = f"{os.path.dirname(final)}/.{os.path.basename(final)}.old-{uuid.uuid4().hex[:8]}"
        fs.move(final, old)
    fs.move(tmp, final)
    if old is not None:
        fs.delete_dir(old)


def _versions(recorded: list[str], strategy: str) -> dict:
    merged: dict = {}
    for text in recorded:
        merged.update(parse_versions(text, f"gold.selection ({strategy})"))
    return merged


@dataclass(frozen=True)
class Selected:
    """One strategy's selection, read and checked once for every format it is exported in."""

    strategy: str
    sel: DataFrame  # the strategy's gold.selection rows
    docs: DataFrame  # silver.documents at the version the selection recorded
    info: object  # the strategy's row of ``selection_info``
    recorded: dict  # the selection's table_versions
    comp: dict  # ``composition``


def selected(ctx: JobContext, selection: DataFrame, strategy: str, info, v_selection: int) -> Selected:
    """One strategy's selection and its documents at the version the selection recorded.

    Raises:
        InputError: a selected document is missing from silver.documents at the recorded version, or the
            selection holds rows of several select runs.
    """
    sel = selection.filter(F.col("strategy") == strategy)
    if len(info["runs"]) != 1:
        raise InputError(
            f"gold.selection v{v_selection} holds {strategy} rows of several select runs "
            f"({', '.join(sorted(info['runs']))}); re-run select"
        )
    recorded = _versions(info["versions"], strategy)
    v_silver = recorded.get(silver.DOCUMENTS.name)
    lh = ctx.lakehouse
    docs = (
        lh.read(silver.DOCUMENTS, version=v_silver)
        if isinstance(v_silver, int)
        else lh.read(silver.DOCUMENTS)
    )
    comp = composition(sel, docs)
    if comp["missing"]:
        raise InputError(
            f"{strategy}: selected documents missing from silver.documents v{v_silver}, e.g. "
            f"{comp['missing']}; re-run select on the current tables"
        )
    return Selected(strategy, sel, docs, info, recorded, comp)


def write_files(s: Selected, tmp_uri: str, fmt: str, shard_mb: float) -> dict:
    """Write one strategy's JSONL.gz or Parquet shards into ``tmp_uri``; returns the format's part of the
    manifest.

    Raises:
        InputError: the shards written do not add up to the selected documents.
    """
    comp, strategy = s.comp, s.strategy
    shard_bytes = max(1, int(shard_mb * MiB))
    rows = export_rows(s.sel, s.docs)
    # Any partition count keeps a shard whole (rows are hash-partitioned by shard id); about one shard per
    # task, estimated from ~4 bytes per token, spreads the writing without a job to count the shards.
    tasks = max(1, min(4096, math.ceil(4 * comp["tokens"] / shard_bytes)))
    payload = ["shard", "rank", "line_bytes", *(["_line"] if fmt == "jsonl.gz" else PARQUET_COLS)]
    to_write = (
        rows.join(assign_shards(rows, shard_bytes), "doc_id")
        .select(*dict.fromkeys(payload))
        .repartition(tasks, "shard")
        .sortWithinPartitions("shard", "rank")
    )
    written = to_write.mapInPandas(shard_writer(tmp_uri, fmt), SHARD_SCHEMA).collect()
    meta = sorted((r.asDict() for r in written), key=lambda d: d["shard"])
    exported = sum(m["docs"] for m in meta)
    if exported != comp["docs"] or [m["shard"] for m in meta] != list(range(len(meta))):
        raise InputError(
            f"{strategy}: exported {exported} documents in shards {[m['shard'] for m in meta]}, "
            f"expected {comp['docs']} in contiguous shards; nothing was replaced"
        )
    return {
        "format": fmt,
        "documents": exported,
        "tokens": comp["tokens"],
        "bytes": sum(m["bytes"] for m in meta),
        "uncompressed_bytes": sum(m["uncompressed_bytes"] for m in meta),
        "shard_mb": shard_mb,
        "shards": [{k: v for k, v in m.items() if k != "shard"} for m in meta],
    }


def folder_uri(root: str, strategy: str, fmt: str) -> str:
    """Where one strategy's export in ``fmt`` goes: ``root/<strategy>``, tokens under ``root/tokens``."""
    return f"{root}/tokens/{safe_name(strategy)}" if fmt == "tokens" else f"{root}/{safe_name(strategy)}"


def publish(
    ctx: JobContext, s: Selected, final_uri: str, v_selection: int, write: Callable[[str], dict]
) -> dict:
    """Write one export aside and swap it into ``final_uri``: ``write(tmp_uri)`` fills a temporary folder
    beside it and returns the format's part of the manifest; the manifest (plus the selection's run and
    versions) goes in last; on any failure the temporary folder is removed and nothing is replaced.

    Returns:
        The manifest, with ``path`` (the folder) added.
    """
    # Executors get URIs (or local paths); the driver works with the filesystem's own paths.
    parent, name = final_uri.rsplit("/", 1)
    tmp_uri = f"{parent}/.{name}.tmp-{uuid.uuid4().hex[:8]}"
    fs, final = _fs_and_path(final_uri)
    tmp = _fs_and_path(tmp_uri)[1]
    fs.create_dir(tmp, recursive=True)
    try:
        manifest = {
            "strategy": s.strategy,
            **write(tmp_uri),
            "composition": {"domain": s.comp["domain"], "source": s.comp["source"]},
            "selection": {"run_id": s.info["runs"][0], "selected_at": s.info["selected_at"]},
            "table_versions": {**s.recorded, gold.SELECTION.name: v_selection},
            "export": {
                "run_id": ctx.run.run_id,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            },
        }
        with fs.open_output_stream(f"{tmp}/manifest.json") as fh:
            fh.write((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        _replace_folder(fs, tmp, final)
    except BaseException:
        if _exists(fs, tmp):
            fs.delete_dir(tmp)
        raise
    manifest["path"] = final_uri
    return manifest


def export_strategy(
    ctx: JobContext,
    selection: DataFrame,
    strategy: str,
    info,
    root: str,
    v_selection: int,
    tokenizer: dict | None = None,
) -> list[dict]:
    """Export one strategy in every configured format, each into its folder, replaced atomically.

    Args:
        ctx: the job context.
        selection: gold.selection at ``v_selection``.
        strategy: the strategy to export.
        info: the strategy's row of ``selection_info``.
        root: the export folder (path or URI).
        v_selection: the gold.selection version read.
        tokenizer: ``export_tokens.check_tokenizer``'s facts, when the formats include tokens.

    Returns:
        The manifests, one per format, in ``export.format`` order.

    Raises:
        InputError: a selected document is missing from silver.documents at the recorded version, or the
            selection holds rows of several select runs.
    """
    conf = ctx.conf.export
    s = selected(ctx, selection, strategy, info, v_selection)
    out = []
    for fmt in conf.format:
        if fmt == "tokens":
            spec = export_tokens.tokenizer_spec(conf.tokens)

            def write(tmp_uri, spec=spec):
                return export_tokens.write_tokens(
                    s.sel, s.docs, tmp_uri, spec, tokenizer, conf.tokens.shard_tokens, s.comp["tokens"]
                )
        else:

            def write(tmp_uri, fmt=fmt):
                return write_files(s, tmp_uri, fmt, conf.shard_mb)

        out.append(publish(ctx, s, folder_uri(root, strategy, fmt), v_selection, write))
    return out


def exported_check(conf: Conf, lh) -> str | None:
    """Why the export must run although its inputs did not change: a strategy's manifest (in any format)
    is missing or names another gold.selection version (``jobs.freshness``); None when every one is in
    place."""
    version = lh.version(gold.SELECTION)
    if version is None:
        return "gold.selection does not exist"
    if conf.export.strategy:
        wanted = [conf.export.strategy]
    else:  # one row per strategy: bounded by strategies, not documents
        rows = lh.read(gold.SELECTION).select("strategy").distinct().collect()
        wanted = sorted(r["strategy"] for r in rows)
    root = export_root(conf)
    for s in wanted:
        for fmt in conf.export.format:
            fs, path = _fs_and_path(f"{folder_uri(root, s, fmt)}/manifest.json")
            try:
                with fs.open_input_stream(path) as fh:
                    manifest = json.loads(fh.read().decode("utf-8"))
            except (FileNotFoundError, OSError, ValueError):
                return f"{path} is missing or unreadable"
            if manifest.get("table_versions", {}).get(gold.SELECTION.name) != version:
                return f"{path} is not of gold.selection v{version}"
    return None


# The export's folders are part of its output: the run is skipped only while every manifest is there.
WATCH = freshness.Watch(
    READS,
    ("export.format", "export.shard_mb", "export.strategy", "export.tokens"),
    files=export_tokens.watch_files,
    check=exported_check,
)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"


def _line(m: dict) -> str:
    s = m["strategy"]
    if m["format"] == "tokens":
        return (
            f"  {s} (tokens): {m['documents']:,} docs, {m['tokens']:,} tokens ({m['dtype']}) in "
            f"{len(m['shards'])} shard(s) ({_size(m['bytes'])}) -> {m['path']}"
        )
    top = ", ".join(
        f"{d['domain'] or '(none)'} {d['tokens'] / max(m['tokens'], 1):.0%}"
        for d in m["composition"]["domain"][:3]
    )
    return (
        f"  {s}: {m['documents']:,} docs, {m['tokens']:,} tokens in {len(m['shards'])} shard(s) "
        f"({_size(m['bytes'])} on disk) -> {m['path']}; top domains {top}"
    )


def export(ctx: JobContext) -> str:
    """The stage body: every (or the configured) strategy of gold.selection → files + manifest, per
    configured format."""
    conf, lh, run = ctx.conf, ctx.lakehouse, ctx.run
    v_sel = run.tables_read.get(gold.SELECTION.name)
    if v_sel is None:
        raise UsageError("gold.selection does not exist yet; run select first")
    selection = lh.read(gold.SELECTION, version=v_sel)
    infos = selection_info(selection)
    have = sorted(infos)
    if not have:
        raise UsageError(f"gold.selection v{v_sel} is empty; run select first")
    wanted = [conf.export.strategy] if conf.export.strategy else have
    if wanted[0] not in infos:
        raise UsageError(
            f"export.strategy {wanted[0]!r}: gold.selection v{v_sel} has no rows for it "
            f"(has: {', '.join(have)})"
        )
    root = export_root(conf)
    tokenizer = None
    if "tokens" in conf.export.format:  # loaded once on the driver: its facts go into every manifest
        tokenizer = export_tokens.check_tokenizer(export_tokens.tokenizer_spec(conf.export.tokens))
    lines = []
    docs = tokens = 0
    for s in wanted:
        manifests = export_strategy(ctx, selection, s, infos[s], root, v_sel, tokenizer)
        docs += manifests[0]["documents"]  # the same documents in every format
        tokens += manifests[0]["selection_tokens" if manifests[0]["format"] == "tokens" else "tokens"]
        lines += [_line(m) for m in manifests]
    run.rows_in = run.rows_out = docs
    sizes = []
    for fmt in conf.export.format:
        if fmt == "tokens":
            sizes.append(f"tokens, ~{conf.export.tokens.shard_tokens:,} tokens/shard")
        else:
            sizes.append(f"{fmt}, ~{conf.export.shard_mb:g} MiB shards")
    head = (
        f"export run {run.run_id}: gold.selection v{v_sel} -> {root} ({'; '.join(sizes)}): {docs:,} docs, "
        f"{tokens:,} tokens"
    )
    return "\n".join([head, *lines])


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-export`` and ``spark-submit jobs/export.py``."""
    args = job_parser(
        STAGE,
        "Export selected documents as sharded JSONL.gz, Parquet or Megatron token shards with a manifest.",
    ).parse_args(argv)
    return run_job(STAGE, args, export, READS, preflight=preflight, watch=WATCH)


if __name__ == "__main__":
    sys.exit(main())
