-- BETR: the include-probability threshold that keeps a share of the held-out tokens
-- (jobs/aggregate_docs.py, token_threshold).
--
-- Input view  betr_heldout: doc_id, p_include, n_tokens; the held-out documents scored by the classifier.
-- Parameter   :keep_share  token share to keep, (0, 1]
-- Output      one row: threshold, kept_tokens, kept_docs, total_tokens, kept_share
--
-- Documents with p_include >= threshold are kept. Candidate thresholds are the distinct p_include values
-- (a threshold between two of them keeps the same documents); the one whose kept share of tokens is
-- closest to :keep_share wins, the higher threshold on a tie. So the kept share is off by at most half of
-- the tokens of the documents at one p_include value.
WITH by_p AS (
  SELECT p_include AS p, SUM(n_tokens) AS tokens, COUNT(*) AS docs
  FROM betr_heldout
  GROUP BY p_include
),
cum AS (
  SELECT
    p,
    SUM(tokens) OVER (ORDER BY p DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept_tokens,
    SUM(docs) OVER (ORDER BY p DESC ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept_docs,
    SUM(tokens) OVER () AS total_tokens
  FROM by_p
)
SELECT
  p AS threshold,
  CAST(kept_tokens AS BIGINT) AS kept_tokens,
  CAST(kept_docs AS BIGINT) AS kept_docs,
  CAST(total_tokens AS BIGINT) AS total_tokens,
  kept_tokens / NULLIF(total_tokens, 0) AS kept_share
FROM cum
ORDER BY ABS(kept_tokens / NULLIF(total_tokens, 0) - :keep_share) ASC NULLS LAST, p DESC
LIMIT 1
