-- query: token-weighted bits-per-byte per model and domain over the scored silver documents
select p.model_id, p.revision, d.domain, count(*) as n_docs, sum(p.nll_sum) as nll_sum,
       sum(p.n_bytes) as n_bytes, sum(p.nll_sum) / (ln(2D) * sum(p.n_bytes)) as bpb
from scores.perplexity p
join silver.documents d on p.doc_id = d.doc_id
where d.domain is not null
group by p.model_id, p.revision, d.domain
order by d.domain, p.model_id, p.revision
