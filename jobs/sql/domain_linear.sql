-- Perplexity correlations, step 4: each estimator's domains ranked, and the linear projection
-- (perplexity_correlations.projection.linear): fill domains in estimate order up to their bound tau until
-- the weights sum to 1; the boundary domain takes the remainder, the rest get 0. This maximises
-- Σ estimate · weight subject to Σ weight = 1, 0 ≤ weight ≤ tau, and depends only on the ranks.
--
-- Views:  estimates  (domain, estimator, estimate, tau); Σ tau ≥ 1 per estimator
-- Output: (domain, estimator, estimate, tau, rank, weight); rank 1 = highest estimate, ties by domain.
WITH ranked AS (
  SELECT
    domain,
    estimator,
    estimate,
    tau,
    ROW_NUMBER() OVER (PARTITION BY estimator ORDER BY estimate DESC, domain) AS rank
  FROM estimates
),
filled AS (
  SELECT
    *,
    COALESCE(
      SUM(tau) OVER (PARTITION BY estimator ORDER BY rank ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING),
      0D
    ) AS tau_before
  FROM ranked
)
SELECT
  domain,
  estimator,
  estimate,
  tau,
  CAST(rank AS INT) AS rank,
  GREATEST(0D, LEAST(tau, 1D - tau_before)) AS weight
FROM filled
