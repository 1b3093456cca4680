-- query: stage runs, newest first: status, duration, rows in and out (the latest event of each run)
select run_id, stage, max_by(status, coalesce(ended_at, started_at)) as status,
       min(started_at) as started_at, max(ended_at) as ended_at,
       round(unix_timestamp(max(ended_at)) - unix_timestamp(min(started_at))) as seconds,
       max(rows_in) as rows_in, max(rows_out) as rows_out,
       max_by(message, coalesce(ended_at, started_at)) as message
from audit.runs
group by run_id, stage
order by started_at desc
