-- select, strategy 'blend': a weighted mean of per-strategy percentile ranks.
--
-- Input views  blend_ranked:  strategy, doc_id, score, domain, n_tokens, score_rank, n_scored (the blended
--                             strategies' rows; score_rank = RANK() by score ascending within the strategy,
--                             n_scored = the strategy's rows, both from jobs.ordered: a window PARTITION BY
--                             strategy would sort each strategy's pool in one task)
--              blend_weights: strategy, weight (≥ 0, normalized to sum 1 by the caller)
-- Output       strategy ('blend'), doc_id, score, domain, n_tokens
--
-- percent_rank = (rank - 1) / (n - 1) over the strategy's documents by score ascending (SQL's PERCENT_RANK):
-- 1.0 for its best document, 0.0 for its worst (and for a strategy with one document); tied scores share a
-- value. A document a strategy did not score contributes 0 for it (ranked below everything that strategy
-- scored). The terms are summed in strategy-name order (array_sort + aggregate) so the float sum, and with
-- it the pick, is the same on every run whatever the partitioning.
WITH ranked AS (
  SELECT
    s.strategy, s.doc_id, s.domain, s.n_tokens,
    CASE
      WHEN s.n_scored > 1 THEN (CAST(s.score_rank AS DOUBLE) - 1.0D) / CAST(s.n_scored - 1 AS DOUBLE)
      ELSE 0.0D
    END * w.weight AS term
  FROM blend_ranked s
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
