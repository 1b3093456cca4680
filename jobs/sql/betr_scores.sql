-- BETR: document scores and positives from scores.similarity (jobs/aggregate_docs.py, betr_labels).
--
-- Input view  betr_similarity: doc_id, benchmark, best_rank, max_cosine; the rows of the chosen benchmarks
--             (one per document and benchmark). best_rank is the document's best rank over the benchmark's
--             targets, null when it is outside every target's top_k.
-- Parameter   :positive_share  share of the scored documents labelled positive
-- Output      doc_id, position, label (1 positive, 0 not)
--
-- Balanced benchmarks. The paper balances the evaluation benchmarks to equal numbers of targets and scores
-- a document by its best rank over all targets. Here ranks were already reduced to one best rank per
-- (document, benchmark), and a benchmark with more targets puts more documents at small best ranks (each
-- target has its own rank 1), so a plain min over benchmarks would favour it. Instead each benchmark orders
-- the documents it ranked (best_rank, then max_cosine desc, then doc_id) into positions 1, 2, 3, ...; a
-- document's score is its best (smallest) position over the benchmarks. The top m documents by that score
-- are then the first ~m/B of every benchmark's order: each benchmark contributes equally whatever its number
-- of targets, which is what equal target counts are for. Documents no benchmark ranked score worst (null).
--
-- Positives: the first CEIL(:positive_share * scored documents) by (position, doc_id); never a document
-- without a position.
WITH positioned AS (
  SELECT
    doc_id, benchmark,
    ROW_NUMBER() OVER (PARTITION BY benchmark ORDER BY best_rank, max_cosine DESC, doc_id) AS position
  FROM betr_similarity
  WHERE best_rank IS NOT NULL
),
best AS (
  SELECT doc_id, MIN(position) AS position FROM positioned GROUP BY doc_id
),
scored AS (
  SELECT d.doc_id, b.position
  FROM (SELECT DISTINCT doc_id FROM betr_similarity) d
  LEFT JOIN best b ON d.doc_id = b.doc_id
),
ordered AS (
  SELECT
    doc_id, position,
    ROW_NUMBER() OVER (ORDER BY position ASC NULLS LAST, doc_id) AS score_rank,
    COUNT(*) OVER () AS n_scored
  FROM scored
)
SELECT
  doc_id,
  position,
  CAST(position IS NOT NULL AND score_rank <= CEIL(:positive_share * n_scored) AS INT) AS label
FROM ordered
