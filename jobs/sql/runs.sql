-- query: stage runs, newest first: status, duration, rows in and out (the latest event of each run)
-- A run killed before it ended is `abandoned` once the next run of its stage found it: `found_by` names that
-- run, and ended_at is when it was found.
select run_id, stage, max_by(status, coalesce(ended_at, started_at)) as status,
       min(started_at) as started_at, max(ended_at) as ended_at,
       round(unix_timestamp(max(ended_at)) - unix_timestamp(min(started_at))) as seconds,
       max(rows_in) as rows_in, max(rows_out) as rows_out,
       case when max_by(status, coalesce(ended_at, started_at)) = 'abandoned'
            then regexp_extract(max_by(message, coalesce(ended_at, started_at)), 'found by run ([^ ,]+)', 1)
       end as found_by,
       max_by(message, coalesce(ended_at, started_at)) as message
from audit.runs
group by run_id, stage
order by started_at desc
