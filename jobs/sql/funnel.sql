-- query: the corpus funnel: raw records -> bronze -> each clean step -> silver.documents -> perplexity filter
-- One row per step, in pipeline order: documents removed by the step and documents left after it.
-- The counts reconcile: read = rejected + filtered + kept. After the clean steps (pii last), what is left
-- is silver.documents; the perplexity filter (a later stage) leaves its drops there and selection skips them.
with
  accepted as (select count(*) as n from bronze.documents),
  rejected as (select count(*) as n from bronze.rejects),
  steps as (
    select * from values
      (1, 'blocklist'), (2, 'normalize'), (3, 'language'), (4, 'rules'), (5, 'exact_dedup'),
      (6, 'near_dedup'), (7, 'decontamination'), (8, 'pii'), (9, 'perplexity') as t(ord, step)
  ),
  dropped as (select step, count(*) as n from silver.filtered group by step),
  clean_steps as (
    select s.ord, s.step, coalesce(d.n, 0) as removed
    from steps s left join dropped d on s.step = d.step
  )
select 0 as ord, 'ingest' as stage, 'records read' as step, cast(0 as bigint) as removed,
       (select n from accepted) + (select n from rejected) as remaining
union all
select 1, 'ingest', 'rejected', (select n from rejected), (select n from accepted)
union all
select 1 + ord, case when step = 'perplexity' then 'filter' else 'clean' end, step, removed,
       (select n from accepted) - sum(removed) over (order by ord rows between unbounded preceding and current row)
from clean_steps
order by ord
