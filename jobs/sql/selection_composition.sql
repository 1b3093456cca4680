-- query: what each strategy selected, per domain: documents, tokens and share of the strategy's tokens
select strategy, coalesce(domain, '(none)') as domain, count(*) as docs, sum(tokens) as tokens,
       round(sum(tokens) / sum(sum(tokens)) over (partition by strategy), 4) as token_share,
       min(rank) as best_rank
from gold.selection
group by strategy, domain
order by strategy, tokens desc, domain
