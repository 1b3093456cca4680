-- Perplexity correlations, projection bound: each domain's share of ALL tokens of silver.documents
-- (documents without a domain count in the denominator). tau_j = token_share_j / keep_ratio.
--
-- Views:  documents  silver.documents (domain, n_tokens_est)
-- Output: (domain, domain_tokens, token_share)
SELECT
  domain,
  SUM(n_tokens_est) AS domain_tokens,
  SUM(n_tokens_est) / (SELECT SUM(n_tokens_est) FROM documents) AS token_share
FROM documents
WHERE domain IS NOT NULL
GROUP BY domain
