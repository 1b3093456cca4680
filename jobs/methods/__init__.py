"""One module per method: pure DataFrame → DataFrame functions (and their SQL in ``jobs/sql/``).

Stage modules (``jobs/<stage>.py``) read tables, unpack the conf into plain arguments, call these, gate and
publish; nothing here reads the conf, and only the Meta-rater signal reader touches the lakehouse.

  betr              BETR: the ranked sample, balanced targets, min rank → positives → page classifier → the
                    pool's scores and the budget's threshold
  pplcorr           perplexity correlations: bpb matrix, model errors, the five estimators, the linear
                    and l2 projections to domain weights, and the page step that scores the pool
  metarater         Meta-rater: signals, [0, 5] normalization, Q, Dirichlet proposals and their top
                    shares, the LightGBM fit of w*
  metarater_proxy   Meta-rater's proxy interface (``Proxy``): the builtin bigram LM and the results of
                    external proxy runs
  rds               RDS+: the round robin over tasks by max cosine
  pick              select: the budgeted, domain-capped pick per strategy and the percentile-rank blend
  sampling          seeded hashes of doc_id: the random baseline and the per-class training sample
  dedup             exact and near (MinHash LSH) duplicates, the survivor rule; dedup_lsh (signatures,
                    bands, bucket pairs, verification) and dedup_components (connected components)
  decontam          benchmark n-gram decontamination as BETR does it: matches cut out with a window, the
                    pool's common n-grams ignored (the n-gram dictionary's bound is in its docstring)
  pplfilter         the perplexity filter (Ziya2): percentile cut points per scope, bands, the drops
  pageclf           the page classifier BETR and pplcorr train: fastText on the driver, scored on executors,
                    or the Spark ML hashed-n-gram logistic regression
"""
