-- select, strategy 'blend': a weighted mean of per-strategy percentile ranks.
--
-- Input views  blend_scores:  strategy, doc_id, score, domain, n_tokens (the blended strategies' rows)
--              blend_weights: strategy, weight (≥ 0, normalized to sum 1 by the caller)
-- Output       strategy ('blend'), doc_id, score, domain, n_tokens
--
-- percent_rank = (rank - 1) / (n - 1) over the strategy's documents by score ascending: 1.0 for its best
-- document, 0.0 for its worst (and for a strategy with one document); tied scores share a value. A document
-- a strategy did not score contributes 0 for it (ranked below everything that strategy scored).
-- The terms are summed in strategy-name order (array_sort + aggregate) so the float sum, and with it the
-- pick, is the same on every run whatever the partitioning.
WITH ranked AS (
  SELECT
    s.strategy, s.doc_id, s.domain, s.n_tokens,
    PERCENT_RANK() OVER (PARTITION BY s.strategy ORDER BY s.score ASC) * w.weight AS term
  FROM blend_scores s
  JOIN blend_weights w ON s.strategy = w.strategy
)
SELECT
  'blend' AS strategy,
  doc_id,
  AGGREGATE(
    ARRAY_SORT(COLLECT_LIST(STRUCT(strategy, term))), CAST(0.0 AS DOUBLE), (acc, x) -> acc + x.term
  ) AS score,
  MAX(domain) AS domain,
  MAX(n_tokens) AS n_tokens
FROM ranked
GROUP BY doc_id
