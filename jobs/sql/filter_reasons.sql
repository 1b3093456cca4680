-- query: why documents were dropped: per clean step and rule, documents, share and an example URL
select step, reason, count(*) as docs,
       round(100 * count(*) / sum(count(*)) over (), 2) as pct_of_dropped,
       round(avg(value), 4) as avg_value,
       min_by(url, doc_id) as example_url
from silver.filtered
group by step, reason
order by docs desc, step, reason
