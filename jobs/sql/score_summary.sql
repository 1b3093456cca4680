-- query: score distributions: per score table, signal and model, documents, mean and percentiles
with long as (
  select 'scores.prrc' as table_name, stack(4,
           'professionalism', professionalism, 'readability', readability,
           'reasoning', reasoning, 'cleanliness', cleanliness) as (signal, value),
         raters as model
  from scores.prrc
  union all
  select 'scores.perplexity', 'bpb', bpb, model_id from scores.perplexity
  union all
  select 'scores.similarity', concat(method, ':', benchmark), max_cosine, model_id from scores.similarity
  union all
  select 'scores.quality', 'rps_doc_unigram_entropy', rps_doc_unigram_entropy, '-' from scores.quality
  where kept
)
select table_name, signal, model, count(*) as docs,
       round(avg(value), 4) as mean, round(stddev(value), 4) as stddev,
       round(percentile(value, 0.1), 4) as p10, round(percentile(value, 0.5), 4) as median,
       round(percentile(value, 0.9), 4) as p90
from long
group by table_name, signal, model
order by table_name, signal, model
