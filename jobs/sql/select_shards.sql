-- export: shard ids by cumulative size, in rank order.
--
-- Input view  export_sizes: strategy, doc_id, rank, line_bytes (UTF-8 bytes of the JSON line + newline)
-- Parameter   :shard_bytes  target uncompressed shard size
-- Output      doc_id, shard (0, 1, 2, ... contiguous)
--
-- A document goes to shard floor(start / shard_bytes), start = bytes of all lines before it, so each shard
-- is within one line of the target. A line longer than the target can leave shard numbers unused;
-- DENSE_RANK closes those gaps. Only these narrow columns go through the window, one partition per
-- strategy: the texts never do.
WITH placed AS (
  SELECT
    strategy,
    doc_id,
    CAST(FLOOR(
      (SUM(line_bytes) OVER (
        PARTITION BY strategy ORDER BY rank ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      ) - line_bytes)
      / :shard_bytes
    ) AS BIGINT) AS raw_shard
  FROM export_sizes
)
SELECT doc_id, CAST(DENSE_RANK() OVER (PARTITION BY strategy ORDER BY raw_shard) - 1 AS INT) AS shard
FROM placed
