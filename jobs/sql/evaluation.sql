-- query: the selection-effect experiment: per strategy, benchmark and metric, mean ± std over seeds and the paired difference to random with its t interval
with s as (
  select distinct strategy, benchmark, metric, n_seeds, mean, std, diff_mean, diff_ci_low, diff_ci_high,
         train_tokens
  from gold.evaluation
)
select s.strategy, s.benchmark, s.metric, s.n_seeds, round(s.mean, 4) as mean, round(s.std, 4) as std,
       round(s.diff_mean, 4) as diff_to_random, round(s.diff_ci_low, 4) as ci_low,
       round(s.diff_ci_high, 4) as ci_high, round(100 * s.diff_mean / r.mean, 2) as pct_of_random,
       s.train_tokens
from s left join s r on r.strategy = 'random' and r.benchmark = s.benchmark and r.metric = s.metric
order by s.metric, s.benchmark, s.strategy <> 'random', s.strategy
