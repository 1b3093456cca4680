-- query: each table's latest version written by a succeeded run, with the run and when it ended
with written as (
  select run_id, stage, ended_at, explode(tables_written) as (table_name, version)
  from audit.runs
  where status = 'succeeded'
)
select table_name, max_by(version, ended_at) as version, max_by(stage, ended_at) as stage,
       max_by(run_id, ended_at) as run_id, max(ended_at) as written_at
from written
group by table_name
order by table_name
