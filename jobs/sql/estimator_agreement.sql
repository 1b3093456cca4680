-- query: how the five correlation estimators agree: per pair, Spearman-style rank correlation of domains
with r as (
  select domain, estimator, rank, count(*) over (partition by estimator) as n
  from gold.domain_correlations
  where projection = 'linear'
)
select a.estimator as estimator_a, b.estimator as estimator_b, count(*) as domains,
       round(1 - 6 * sum(pow(a.rank - b.rank, 2)) / (count(*) * (pow(count(*), 2) - 1)), 4) as rank_corr,
       sum(case when a.rank <= 10 and b.rank <= 10 then 1 else 0 end) as top10_shared
from r a join r b on a.domain = b.domain and a.estimator < b.estimator
group by a.estimator, b.estimator
order by a.estimator, b.estimator
