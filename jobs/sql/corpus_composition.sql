-- query: what silver.documents holds per domain, source and language: documents, tokens and token share
with long as (
  select stack(3, 'domain', coalesce(domain, '(none)'), 'source', source, 'lang', lang) as (dimension, value),
         n_tokens_est
  from silver.documents
)
select dimension, value, count(*) as docs, sum(n_tokens_est) as tokens,
       round(sum(n_tokens_est) / sum(sum(n_tokens_est)) over (partition by dimension), 4) as token_share
from long
group by dimension, value
order by dimension, tokens desc, value
