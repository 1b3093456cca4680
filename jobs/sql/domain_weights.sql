-- query: domain weights from perplexity correlations (the profile's estimator and projection), best first
select domain, estimator, projection, round(estimate, 4) as estimate, rank,
       round(weight, 4) as weight, round(token_share, 4) as token_share, round(tau, 4) as tau,
       n_models, n_docs, domain_tokens
from gold.domain_correlations
where chosen
order by weight desc, rank, domain
