-- Perplexity correlations, step 2: each model's benchmark error y[k] = mean over the benchmark group of
-- (1 − accuracy). A model without a score for every benchmark of the group is left out: its mean would
-- be over other benchmarks than everyone else's.
--
-- Views:  model_scores     ref.model_scores (model_id, benchmark, accuracy)
--         benchmark_group  (benchmark): the group
-- Output: (model_id, error, n_benchmarks)
SELECT
  s.model_id,
  AVG(1D - s.accuracy) AS error,
  COUNT(*) AS n_benchmarks
FROM model_scores s
JOIN benchmark_group g ON s.benchmark = g.benchmark
GROUP BY s.model_id
HAVING COUNT(*) = (SELECT COUNT(DISTINCT benchmark) FROM benchmark_group)
