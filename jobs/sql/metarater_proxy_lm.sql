-- Meta-rater built-in proxy: one smoothed bigram LM per proposal, trained on the documents the proposal
-- selects and scored on held-out validation texts; every proposal in this one query.
--
-- Views  proxy_selection (weights_id STRING, doc_id STRING)   each proposal's selected documents
--        proxy_ids       (weights_id STRING)                  the proposals (a small local table)
--        proxy_docs      (doc_id STRING, bigrams ARRAY<STRUCT<prev STRING, tok STRING>>, n_tokens INT)
--                                          one row per selected document: one (prev, tok) per token, prev is
--                                          the token before it, '<s>' for the first; n_tokens = SIZE(bigrams)
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
--
-- Spread over tasks: a document's bigrams are exploded inside its task and counted there (per document and
-- needed key; the needed keys are broadcast), so no row per token is stored or shuffled. Every shuffle is
-- keyed by document or by (proposal, key): nothing is partitioned by the proposal alone (a handful of
-- values), and the per-proposal totals and the vocabulary size are broadcast into the lookups.
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
needed_keys AS (
  SELECT DISTINCT kind, a, b FROM needed
),
doc_keys AS (
  -- a document's needed-key candidates, one per token and kind: exploded inside the task, never stored
  SELECT d.doc_id, k.kind, k.a, k.b
  FROM proxy_docs d
  LATERAL VIEW inline(d.bigrams) g AS prev, tok
  LATERAL VIEW explode(array(
    named_struct('kind', 'pair', 'a', g.prev, 'b', g.tok),
    named_struct('kind', 'hist', 'a', g.prev, 'b', ''),
    named_struct('kind', 'uni', 'a', '', 'b', g.tok)
  )) x AS k
),
doc_counts AS (
  -- per document: how often each needed key occurs (independent of the proposals)
  SELECT /*+ BROADCAST(n) */ dk.doc_id, dk.kind, dk.a, dk.b, COUNT(*) AS c
  FROM doc_keys dk
  LEFT SEMI JOIN needed_keys n ON dk.kind = n.kind AND dk.a = n.a AND dk.b = n.b
  GROUP BY dk.doc_id, dk.kind, dk.a, dk.b
),
counts AS (
  -- per proposal: the same counts over its selected documents
  SELECT s.weights_id, c.kind, c.a, c.b, SUM(c.c) AS c
  FROM proxy_selection s
  JOIN doc_counts c ON s.doc_id = c.doc_id
  GROUP BY s.weights_id, c.kind, c.a, c.b
),
totals AS (
  -- joined on (doc_id, n_tokens) only: Spark does not push SIZE(bigrams) below a join, so the join would
  -- carry every document's bigrams, and a broadcast of them (chosen from the cache's estimate) was 9 MB
  -- per task at 16,000 documents and lost its task results on a 1 GB driver (TaskResultLost)
  SELECT s.weights_id, COUNT(*) AS train_docs, COALESCE(SUM(d.n_tokens), 0) AS train_tokens
  FROM proxy_selection s
  LEFT JOIN (SELECT doc_id, n_tokens FROM proxy_docs) d ON s.doc_id = d.doc_id
  GROUP BY s.weights_id
),
vocab AS (
  SELECT COUNT(DISTINCT tok) AS v
  FROM (
    SELECT explode(array_distinct(transform(bigrams, x -> x.tok))) AS tok FROM proxy_docs
    UNION ALL
    SELECT tok FROM val_bigrams
  )
),
grid AS (
  -- one row per proposal and validation bigram, partitioned like val_bigrams (by bigram)
  SELECT /*+ BROADCAST(p) */ p.weights_id, v.prev, v.tok, v.n
  FROM val_bigrams v
  CROSS JOIN proxy_ids p
),
looked_up AS (
  -- per proposal and validation bigram: c(v w), c(v), c(w)
  SELECT
    g.weights_id, g.n,
    COALESCE(pr.c, 0) AS c_pair,
    COALESCE(h.c, 0) AS c_hist,
    COALESCE(u.c, 0) AS c_uni
  FROM grid g
  LEFT JOIN (SELECT weights_id, a, b, c FROM counts WHERE kind = 'pair') pr
    ON pr.weights_id = g.weights_id AND pr.a = g.prev AND pr.b = g.tok
  LEFT JOIN (SELECT weights_id, a, c FROM counts WHERE kind = 'hist') h
    ON h.weights_id = g.weights_id AND h.a = g.prev
  LEFT JOIN (SELECT weights_id, b, c FROM counts WHERE kind = 'uni') u
    ON u.weights_id = g.weights_id AND u.b = g.tok
),
scored AS (
  SELECT /*+ BROADCAST(t), BROADCAST(vocab) */
    l.weights_id, l.n,
    (l.c_pair + :mu * (l.c_uni + 1) / (t.train_tokens + vocab.v)) / (l.c_hist + :mu) AS p
  FROM looked_up l
  JOIN totals t ON l.weights_id = t.weights_id
  CROSS JOIN vocab
),
losses AS (
  SELECT weights_id, -SUM(n * LN(p)) / SUM(n) AS val_loss, SUM(n) AS val_tokens
  FROM scored
  GROUP BY weights_id
)
SELECT /*+ BROADCAST(t) */ l.weights_id, l.val_loss, t.train_docs, t.train_tokens, l.val_tokens
FROM losses l
JOIN totals t ON l.weights_id = t.weights_id
