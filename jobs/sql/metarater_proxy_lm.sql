-- Meta-rater built-in proxy: one smoothed bigram LM per proposal, trained on the documents the proposal
-- selects and scored on held-out validation texts; every proposal in this one query.
--
-- Views  proxy_selection (weights_id STRING, doc_id STRING)   each proposal's selected documents
--        doc_bigrams     (doc_id STRING, prev STRING, tok STRING)
--                                          one row per token of a selected document; prev is the token
--                                          before it, '<s>' for the first
--        val_bigrams     (prev STRING, tok STRING, n BIGINT)   the same over the validation texts, counted
-- Params :mu  smoothing mass of the bigram model toward the unigram model
-- Result (weights_id, val_loss, train_docs, train_tokens, val_tokens)
--
-- For proposal k, with counts c(.) over k's documents only, T its tokens and V the distinct tokens of
-- all selected documents and the validation texts (one V for every k):
--   p_uni(w)   = (c(w) + 1) / (T + |V|)                     add-one unigram
--   p(w | v)   = (c(v w) + mu * p_uni(w)) / (c(v) + mu)     bigram smoothed toward p_uni
--                (c(v) = tokens that follow v; p(. | v) sums to 1 over V for every v)
--   val_loss   = - sum over validation tokens of ln p(w | v), / validation tokens    (nats per token)
-- Only the counts the loss looks up are kept: for a validation bigram v w, the keys
-- ('pair', v, w) -> c(v w), ('hist', v, '') -> c(v) and ('uni', '', w) -> c(w).
WITH
needed AS (
  SELECT v.prev, v.tok, v.n, k.kind, k.a, k.b
  FROM val_bigrams v
  LATERAL VIEW explode(array(
    named_struct('kind', 'pair', 'a', v.prev, 'b', v.tok),
    named_struct('kind', 'hist', 'a', v.prev, 'b', ''),
    named_struct('kind', 'uni', 'a', '', 'b', v.tok)
  )) x AS k
),
doc_keys AS (
  SELECT d.doc_id, k.kind, k.a, k.b
  FROM doc_bigrams d
  LATERAL VIEW explode(array(
    named_struct('kind', 'pair', 'a', d.prev, 'b', d.tok),
    named_struct('kind', 'hist', 'a', d.prev, 'b', ''),
    named_struct('kind', 'uni', 'a', '', 'b', d.tok)
  )) x AS k
),
doc_counts AS (
  -- per document: how often each needed key occurs (independent of the proposals)
  SELECT dk.doc_id, dk.kind, dk.a, dk.b, COUNT(*) AS c
  FROM doc_keys dk
  LEFT SEMI JOIN (SELECT DISTINCT kind, a, b FROM needed) n
    ON dk.kind = n.kind AND dk.a = n.a AND dk.b = n.b
  GROUP BY dk.doc_id, dk.kind, dk.a, dk.b
),
counts AS (
  -- per proposal: the same counts over its selected documents
  SELECT s.weights_id, c.kind, c.a, c.b, SUM(c.c) AS c
  FROM proxy_selection s
  JOIN doc_counts c ON s.doc_id = c.doc_id
  GROUP BY s.weights_id, c.kind, c.a, c.b
),
doc_tokens AS (
  SELECT doc_id, COUNT(*) AS n FROM doc_bigrams GROUP BY doc_id
),
totals AS (
  SELECT s.weights_id, COUNT(*) AS train_docs, COALESCE(SUM(t.n), 0) AS train_tokens
  FROM proxy_selection s
  LEFT JOIN doc_tokens t ON s.doc_id = t.doc_id
  GROUP BY s.weights_id
),
vocab AS (
  SELECT COUNT(DISTINCT tok) AS v
  FROM (SELECT tok FROM doc_bigrams UNION ALL SELECT tok FROM val_bigrams)
),
looked_up AS (
  -- per proposal and validation bigram: c(v w), c(v), c(w)
  SELECT
    t.weights_id, t.train_docs, t.train_tokens, nd.prev, nd.tok, nd.n,
    SUM(CASE WHEN nd.kind = 'pair' THEN COALESCE(c.c, 0) END) AS c_pair,
    SUM(CASE WHEN nd.kind = 'hist' THEN COALESCE(c.c, 0) END) AS c_hist,
    SUM(CASE WHEN nd.kind = 'uni' THEN COALESCE(c.c, 0) END) AS c_uni
  FROM totals t
  CROSS JOIN needed nd
  LEFT JOIN counts c
    ON c.weights_id = t.weights_id AND c.kind = nd.kind AND c.a = nd.a AND c.b = nd.b
  GROUP BY t.weights_id, t.train_docs, t.train_tokens, nd.prev, nd.tok, nd.n
),
scored AS (
  SELECT
    l.weights_id, l.train_docs, l.train_tokens, l.n,
    (l.c_pair + :mu * (l.c_uni + 1) / (l.train_tokens + vocab.v)) / (l.c_hist + :mu) AS p
  FROM looked_up l
  CROSS JOIN vocab
)
SELECT weights_id, -SUM(n * LN(p)) / SUM(n) AS val_loss, train_docs, train_tokens, SUM(n) AS val_tokens
FROM scored
GROUP BY weights_id, train_docs, train_tokens
