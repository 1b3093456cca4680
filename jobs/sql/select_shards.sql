-- export: shard ids by cumulative size, in rank order.
--
-- Input view  export_sizes: strategy, doc_id, rank, size (the document's size in the shards: UTF-8 bytes of
--             its JSON line + newline for the file formats, its tokens + EOS for the tokenized export)
-- Parameter   :target  target shard size, in the same unit
-- Output      doc_id, shard (0, 1, 2, ... contiguous)
--
-- A document goes to shard floor(start / target), start = the sizes of all documents before it, so each
-- shard is within one document of the target and no document is split. A document larger than the target
-- can leave shard numbers unused; DENSE_RANK closes those gaps. Only these narrow columns go through the
-- window, one partition per strategy: the texts never do.
WITH placed AS (
  SELECT
    strategy,
    doc_id,
    CAST(FLOOR(
      (SUM(size) OVER (
        PARTITION BY strategy ORDER BY rank ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) - size)
      / :target
    ) AS BIGINT) AS raw_shard
  FROM export_sizes
)
SELECT doc_id, CAST(DENSE_RANK() OVER (PARTITION BY strategy ORDER BY raw_shard) - 1 AS INT) AS shard
FROM placed
