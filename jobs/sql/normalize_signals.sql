-- Meta-rater: normalize every signal over the document pool to [0, 5].
--
-- View   signals_long (doc_id STRING, signal STRING, value DOUBLE, classes INT)
--          one row per document and signal; `classes` is k for a class output (a PRRC *_label column
--          holds the argmax over k = 6 classes) and NULL for a continuous signal.
-- Result (doc_id, signal, norm)
--
--   continuous signal   norm = (value - min) / (max - min) * 5      min and max over the pool
--   class output        norm = value * 5 / (k - 1)                  argmax 0..k-1 onto 0..5
--   constant signal     norm = 0                                    max = min: it cannot rank documents,
--                                                                   so it adds nothing to any Q
--
-- bounds has one row per signal and is broadcast: a join keyed by the signal (a handful of values) would
-- send each signal's whole column through one task.
WITH bounds AS (
  SELECT signal, MIN(value) AS lo, MAX(value) AS hi
  FROM signals_long
  GROUP BY signal
)
SELECT /*+ BROADCAST(b) */
  s.doc_id,
  s.signal,
  CASE
    WHEN s.classes IS NOT NULL THEN s.value * 5 / (s.classes - 1)
    WHEN b.hi = b.lo THEN CAST(0 AS DOUBLE)
    ELSE (s.value - b.lo) / (b.hi - b.lo) * 5
  END AS norm
FROM signals_long s
JOIN bounds b ON s.signal = b.signal
