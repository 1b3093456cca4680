-- query: every gate (expectation suite) run: failures first, then newest; table version when published
select validated_at, stage, table_name, success, evaluated, unsuccessful, observed_rows, table_version, run_id
from audit.expectations
order by success, validated_at desc, table_name
