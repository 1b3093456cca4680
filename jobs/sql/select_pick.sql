-- select: documents per strategy to a token budget, with an optional per-domain cap.
--
-- Input view  select_candidates: strategy, doc_id, score, domain, n_tokens (one row per strategy and doc).
-- Parameters  :token_budget  tokens per strategy
--             :domain_cap    tokens per (strategy, domain); pass :token_budget for "no cap" (a domain can
--                            never hold more than the whole budget, so that cap removes nothing)
-- Output      strategy, doc_id, rank, score, domain, tokens, cum_tokens
--
-- Order: score desc, ties by doc_id asc. Within a domain the pick is a prefix: a document whose domain's
-- running sum passes the cap is skipped, and so is everything after it in that domain; other domains go
-- on. Over the documents left, the pick is again a prefix: it stops at the first document that would take
-- the running sum past the budget (no greedy fill with later, smaller documents), so rank 1..n is exactly
-- the score order and cum_tokens is the running sum. Tokens are ≥ 0, so both running sums only grow and
-- the WHERE filters cut prefixes.
WITH by_domain AS (
  SELECT
    strategy, doc_id, score, domain, n_tokens AS tokens,
    SUM(n_tokens) OVER (
      PARTITION BY strategy, domain ORDER BY score DESC, doc_id ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS domain_cum
  FROM select_candidates
),
capped AS (
  SELECT strategy, doc_id, score, domain, tokens FROM by_domain WHERE domain_cum <= :domain_cap
),
running AS (
  SELECT
    strategy, doc_id, score, domain, tokens,
    CAST(ROW_NUMBER() OVER (PARTITION BY strategy ORDER BY score DESC, doc_id ASC) AS INT) AS rank,
    SUM(tokens) OVER (
      PARTITION BY strategy ORDER BY score DESC, doc_id ASC
      ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    ) AS cum_tokens
  FROM capped
)
SELECT strategy, doc_id, rank, score, domain, tokens, CAST(cum_tokens AS BIGINT) AS cum_tokens
FROM running
WHERE cum_tokens <= :token_budget
