-- Perplexity correlations, step 3: the five estimators per domain (Thrush et al. 2024; the formulas of
-- the reference package perplexity_correlations.estimation), over the N models:
--
--   spearmanr  1 − 6 Σ_k (rank y_k − rank x_k)² / (N(N² − 1))
--   sign_cdf   2/(N(N−1)) Σ_{k<g} sign(y_g − y_k)(cdf x_g − cdf x_k),  cdf = rank / N
--   sign_sign  2/(N(N−1)) Σ_{k<g} sign(y_g − y_k) sign(x_g − x_k)
--   sign       2/(N(N−1)) Σ_{k<g} sign(y_g − y_k)(x_g − x_k)            (Chen & Banerjee 2017)
--   product    1/N Σ_k y_k x_k                                          (Plan et al. 2016)
--
-- x = X[k, j] is model k's bits-per-byte on the domain, y_k its benchmark error. They enter as the
-- reference takes them (bpb and error, no sign flip), so a high estimate means lower bpb goes with lower
-- error. Ranks are 1..N with ties broken by model order, model_id ascending: what the reference's
-- argsort(argsort(·)) + 1 gives with a stable sort over models listed in that order.
--
-- sign and sign_cdf are linear in x: Σ_{k<g} sign(y_g − y_k)(a_g − a_k) = Σ_g S_g a_g with
-- S_g = #{k: y_k < y_g} − #{k: y_k > y_g} (a pair's term is symmetric; split it between its two models),
-- and S depends on y alone, so they take one pass over the rows. sign_sign counts concordant minus
-- discordant pairs, which no per-model sum gives: it pairs each domain's models.
--
-- Views:  bpb     (model_id, domain, bpb): complete, every domain has a row for every model in errors
--         errors  (model_id, error)
-- Output: (domain, n_models, estimator, estimate), five rows per domain.
WITH models AS (
  SELECT
    e.model_id,
    e.error,
    ROW_NUMBER() OVER (ORDER BY e.model_id) AS k,
    ROW_NUMBER() OVER (ORDER BY e.error, e.model_id) AS y_rank,
    RANK() OVER (ORDER BY e.error) - RANK() OVER (ORDER BY e.error DESC) AS s,
    COUNT(*) OVER () AS n
  FROM errors e
  JOIN (SELECT DISTINCT model_id FROM bpb) present ON e.model_id = present.model_id
),
cells AS (
  -- N rows: sent to every task rather than shuffling the N·D matrix by model
  SELECT /*+ BROADCAST(m) */
    b.domain,
    m.k,
    b.bpb AS x,
    m.error AS y,
    m.y_rank,
    m.s,
    m.n,
    ROW_NUMBER() OVER (PARTITION BY b.domain ORDER BY b.bpb, m.k) AS x_rank
  FROM bpb b
  JOIN models m ON b.model_id = m.model_id
),
per_domain AS (
  SELECT
    domain,
    COUNT(*) AS n_models,
    MAX(n) AS n,
    SUM((y_rank - x_rank) * (y_rank - x_rank)) AS rank_d2,
    SUM(s * x_rank) AS s_rank,
    SUM(s * x) AS s_x,
    AVG(y * x) AS product
  FROM cells
  GROUP BY domain
),
pairs AS (
  -- N(N-1)/2 rows per domain, the query's main cost; models by integer index k, cheaper to compare
  SELECT a.domain, SUM(SIGN(b.y - a.y) * SIGN(b.x - a.x)) AS concordance
  FROM cells a
  JOIN cells b ON a.domain = b.domain AND a.k < b.k
  GROUP BY a.domain
)
SELECT
  d.domain,
  d.n_models,
  STACK(
    5,
    'spearmanr', 1D - 6D * d.rank_d2 / (d.n * (d.n * d.n - 1)),
    'sign_cdf', 2D * d.s_rank / (d.n * d.n * (d.n - 1)),
    'sign_sign', 2D * p.concordance / (d.n * (d.n - 1)),
    'sign', 2D * d.s_x / (d.n * (d.n - 1)),
    'product', d.product
  ) AS (estimator, estimate)
FROM per_domain d
JOIN pairs p ON d.domain = p.domain
