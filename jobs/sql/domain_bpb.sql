-- Perplexity correlations, step 1: the model x domain bits-per-byte matrix X (Thrush et al. 2024).
--
--   X[k, j] = Σ nll_sum / (ln 2 · Σ n_bytes) over domain j's documents, per model k
--
-- Token-weighted: one long document counts for its bytes, not as one vote (this is not a mean of
-- per-document bpb). Only documents scored by EVERY model of the pool enter, so every model is measured
-- on the same text; documents without a domain are left out. A model scored under several revisions
-- counts with its latest (the revision of its most recent scoring run). Domains keep only if they have
-- at least :min_docs such documents.
--
-- Views:  perplexity  scores.perplexity (doc_id, model_id, revision, nll_sum, n_bytes, scored_at)
--         documents   silver.documents (doc_id, domain)
--         pool        (model_id): the models to use
-- Params: :min_docs
-- Output: (model_id, domain, bpb, n_docs, nll_sum, n_bytes), one row per model and kept domain.
WITH revisions AS (
  SELECT
    p.model_id,
    p.revision,
    ROW_NUMBER() OVER (PARTITION BY p.model_id ORDER BY MAX(p.scored_at) DESC, p.revision DESC) AS newest
  FROM perplexity p
  WHERE p.model_id IN (SELECT model_id FROM pool)
  GROUP BY p.model_id, p.revision
),
scored AS (
  SELECT p.doc_id, p.model_id, p.nll_sum, p.n_bytes, d.domain
  FROM perplexity p
  JOIN revisions r ON p.model_id = r.model_id AND p.revision = r.revision AND r.newest = 1
  JOIN documents d ON p.doc_id = d.doc_id
  WHERE d.domain IS NOT NULL
),
complete AS (
  SELECT doc_id
  FROM scored
  GROUP BY doc_id
  HAVING COUNT(DISTINCT model_id) = (SELECT COUNT(*) FROM revisions WHERE newest = 1)
)
SELECT
  s.model_id,
  s.domain,
  SUM(s.nll_sum) / (LN(2D) * SUM(s.n_bytes)) AS bpb,
  COUNT(*) AS n_docs,
  SUM(s.nll_sum) AS nll_sum,
  SUM(s.n_bytes) AS n_bytes
FROM scored s
JOIN complete c ON s.doc_id = c.doc_id
GROUP BY s.model_id, s.domain
HAVING COUNT(*) >= :min_docs
