-- query: overlap between strategies' selections: shared documents and Jaccard index per pair
with s as (select distinct strategy, doc_id from gold.selection),
     n as (select strategy, count(*) as docs from s group by strategy)
select a.strategy as strategy_a, b.strategy as strategy_b, count(*) as shared_docs,
       na.docs as docs_a, nb.docs as docs_b,
       round(count(*) / (na.docs + nb.docs - count(*)), 4) as jaccard
from s a
join s b on a.doc_id = b.doc_id and a.strategy < b.strategy
join n na on na.strategy = a.strategy
join n nb on nb.strategy = b.strategy
group by a.strategy, b.strategy, na.docs, nb.docs
order by jaccard desc, strategy_a, strategy_b
