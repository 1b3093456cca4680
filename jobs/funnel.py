"""The funnel check: read a Spark event log and name the stages that send their shuffle through few tasks.

A step funnels when its work does not spread over tasks in proportion to the data: a window partitioned by
a key with a handful of values (strategy, model, benchmark), a window or sort with no partition at all, a
join or aggregation keyed by a handful of values, or the pool collected on the driver. On a laptop such a
step is as fast as any other; on a cluster of hundreds of cores it runs on one and stalls the run. The
check finds them in what Spark records, whatever the code looks like.

Over the stages that read at least ``min_records`` shuffled records (a stage that reads no shuffle reads
files, which Spark splits by size), a stage fails when

  * one task read more than half of the stage's records, or more than 3x its fair share (records / tasks);
  * more than a quarter of its tasks read no record (the mark of a low-cardinality partition key); or
  * it ran as one task.

Each failure names the stage, the numbers and the Python lines that started its job (innermost project
frame first). PySpark names only some actions (``collect``, ``toPandas``); ``jobs.call_sites`` makes
every DataFrame action and write name the project line that called it.

Run it: ``python -m jobs.funnel run --conf PROFILE --from clean --to select --events DIR`` runs those
stages in this process with the event log on, AQE partition coalescing off (so small data keeps its
shuffle partitions and the measure means the same at every size) and ``--partitions`` shuffle partitions,
then checks the log; ``python -m jobs.funnel check DIR`` checks an existing log. Exit 1 when a stage
funnels. What is not visible here: collects on the driver (they have no shuffle); the code keeps those
bounded by domains, targets, proposals or strategies.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jobs.call_sites import PROJECT_ROOTS, trace_call_sites

MIN_RECORDS = 2000
MAX_SHARE = 0.5
MAX_FAIR_MULTIPLE = 3.0
MAX_EMPTY_SHARE = 0.25

# A Python source line in a call site: "collect at /work/main/jobs/selection.py:274" or a stack line
# "  File ".../jobs/selection.py", line 274, in select".
_PY_SITE = re.compile(r"(?P<path>[^\s\"'()]+\.py)(?::|\", line )(?P<line>\d+)")


def event_log_conf(log_dir: str | Path) -> dict[str, str]:
    """Spark settings that write an uncompressed event log to ``log_dir`` and keep every shuffle partition.

    Merge them into a profile's ``spark.conf`` (they must be set before the session starts).
    """
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": Path(log_dir).resolve().as_uri(),
        "spark.eventLog.compress": "false",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
    }


@dataclass
class Stage:
    """One completed stage attempt and the shuffle records each of its tasks read."""

    stage_id: int
    attempt: int
    name: str
    num_tasks: int
    details: str = ""
    job_sites: list[str] = field(default_factory=list)
    group: str | None = None  # the job group of its first job: the corpuslake stage that ran it
    records: dict[int, int] = field(default_factory=dict)  # task index → shuffle records read
    # The task indexes whose partition comes from a shuffle (a union also has tasks that read files or
    # cached data); None: every task.
    shuffle_tasks: list[int] | None = None

    @property
    def tasks(self) -> list[int]:
        """The task indexes judged: those that read a shuffle."""
        if self.shuffle_tasks is not None:
            return self.shuffle_tasks
        return list(range(max(self.num_tasks, len(self.records))))

    @property
    def total(self) -> int:
        return sum(self.records.values())

    @property
    def call_site(self) -> str:
        """The project's Python lines in the first of its jobs' call sites, stage name or details that
        names one (innermost first, ``<`` before each caller)."""
        for text in [*self.job_sites, self.name, self.details]:
            sites = [
                f"{_short(m.group('path'))}:{m.group('line')}"
                for m in _PY_SITE.finditer(text or "")
                if "/pyspark/" not in m.group("path") and "/site-packages/" not in m.group("path")
            ]
            if sites:
                return " < ".join(dict.fromkeys(sites))
        return f"(no Python call site; Spark names it {self.name!r})"


def _short(path: str) -> str:
    """A project path from its top folder (``jobs/selection.py``)."""
    for root in PROJECT_ROOTS:
        i = path.rfind("/" + root)
        if i >= 0:
            return path[i + 1 :]
    return path


@dataclass(frozen=True)
class Funnel:
    """A stage that failed the check, with why."""

    stage: Stage
    reasons: tuple[str, ...]

    def line(self) -> str:
        s = self.stage
        return (
            f"stage {s.stage_id}.{s.attempt} at {s.call_site}: {s.total:,} shuffled records over "
            f"{s.num_tasks} task(s): {'; '.join(self.reasons)}"
        )


def event_files(path: str | Path) -> list[Path]:
    """The event log files under ``path`` (a file, or a folder of applications' logs), in write order."""
    p = Path(path)
    if p.is_file():
        return [p]

    # Spark names a log by application id (``local-1700000000000``), a running one ``….inprogress``, and a
    # rolling log is a folder ``eventlog_v2_<app>`` of ``events_<n>_<app>`` parts; ``appstatus_…`` files are
    # empty markers and Hadoop's local file system writes ``.….crc`` checksums beside them.
    def key(f: Path):
        m = re.match(r"events_(\d+)_", f.name)
        return (str(f.parent), int(m.group(1)) if m else 0, f.name)

    files = [f for f in p.rglob("*") if f.is_file() and not f.name.startswith((".", "appstatus_"))]
    return sorted(files, key=key)


_WANTED = (
    b"SparkListenerApplicationStart",
    b"SparkListenerJobStart",
    b"SparkListenerStageSubmitted",
    b"SparkListenerStageCompleted",
    b"SparkListenerTaskEnd",
)


def _events(files: Iterable[Path]) -> Iterator[dict]:
    for f in files:
        opener = gzip.open if f.suffix == ".gz" else open
        with opener(f, "rb") as fh:
            for line in fh:
                head = line[:60]
                if not any(w in head for w in _WANTED):
                    continue  # SQL plans and the rest: large and not needed
                try:
                    yield json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):  # the last line of a killed driver's log
                    continue


def shuffle_tasks(rdds: list[dict], num_tasks: int) -> list[int] | None:
    """The partitions of a stage's last RDD that come from a shuffle read, from the stage's ``RDD Info``.

    A ``UnionRDD`` lays its parents' partitions end to end (in dependency order); an RDD with one parent
    keeps its parent's partitions; a ``ShuffledRowRDD`` (or any RDD with a shuffled parent among several,
    such as a sort-merge join's zip) reads a shuffle in every partition; an RDD with no parent in the stage
    (a file scan, a local table, a cache) reads none. None when the graph does not say.
    """
    by_id = {r["RDD ID"]: r for r in rdds}
    if not by_id:
        return None
    parents = {i: [p for p in (r.get("Parent IDs") or []) if p in by_id] for i, r in by_id.items()}
    children = {p for ps in parents.values() for p in ps}
    roots = [i for i in by_id if i not in children]
    if len(roots) != 1:
        return None

    def mask(i: int, depth: int = 0) -> list[bool] | None:
        r = by_id[i]
        n = int(r.get("Number of Partitions", 0))
        name = r.get("Name") or ""
        if "ShuffledRowRDD" in name or "ShuffledRDD" in name or depth > 200:
            return [True] * n
        ps = parents[i]
        if not ps:
            return [False] * n
        subs = [mask(p, depth + 1) for p in ps]
        if any(m is None for m in subs):
            return None
        if name.startswith("UnionRDD") or (len(ps) > 1 and sum(len(m) for m in subs) == n):
            out = [x for m in subs for x in m]
            return out if len(out) == n else None
        if len(ps) == 1 and len(subs[0]) == n:
            return subs[0]
        return [any(any(m) for m in subs)] * n

    m = mask(roots[0])
    if m is None or len(m) != num_tasks:
        return None
    return [i for i, x in enumerate(m) if x]


def read_stages(path: str | Path) -> list[Stage]:
    """Every completed stage attempt in the event log(s) at ``path`` with its tasks' shuffle reads.

    A task's records are those of its successful attempt (a retried or speculative task counts once).
    Stages of different applications in one folder are kept apart by their order in the files.
    """
    stages: dict[tuple[int, int, int], Stage] = {}
    app = 0
    job_sites: dict[tuple[int, int], list[str]] = {}
    job_groups: dict[tuple[int, int], str] = {}
    for ev in _events(event_files(path)):
        kind = ev.get("Event")
        if kind == "SparkListenerApplicationStart":
            app += 1
        elif kind == "SparkListenerJobStart":
            props = ev.get("Properties") or {}
            sites = [props.get("callSite.short") or "", props.get("callSite.long") or ""]
            for sid in ev.get("Stage IDs") or []:
                job_sites.setdefault((app, sid), []).extend(s for s in sites if s)
                if props.get("spark.jobGroup.id"):
                    job_groups.setdefault((app, sid), props["spark.jobGroup.id"])
        elif kind in ("SparkListenerStageSubmitted", "SparkListenerStageCompleted"):
            info = ev["Stage Info"]
            key = (app, info["Stage ID"], info.get("Stage Attempt ID", 0))
            st = stages.get(key)
            if st is None:
                st = stages[key] = Stage(key[1], key[2], info.get("Stage Name", ""), info["Number of Tasks"])
            st.details = info.get("Details") or st.details
            st.job_sites = job_sites.get((app, key[1]), [])
            st.group = job_groups.get((app, key[1]))
            if info.get("RDD Info"):
                st.shuffle_tasks = shuffle_tasks(info["RDD Info"], st.num_tasks)
        elif kind == "SparkListenerTaskEnd":
            reason = (ev.get("Task End Reason") or {}).get("Reason")
            if reason != "Success":
                continue
            key = (app, ev["Stage ID"], ev.get("Stage Attempt ID", 0))
            st = stages.get(key)
            if st is None:
                continue
            metrics = ev.get("Task Metrics") or {}
            read = (metrics.get("Shuffle Read Metrics") or {}).get("Total Records Read", 0)
            st.records[ev["Task Info"]["Index"]] = int(read)
    return list(stages.values())


def judge(
    stage: Stage,
    min_records: int = MIN_RECORDS,
    max_share: float = MAX_SHARE,
    max_fair_multiple: float = MAX_FAIR_MULTIPLE,
    max_empty_share: float = MAX_EMPTY_SHARE,
) -> tuple[str, ...] | None:
    """Why ``stage`` funnels its shuffle, or None when it does not (or reads fewer than ``min_records``)."""
    total = stage.total
    if total < min_records:
        return None
    tasks = stage.tasks
    n = len(tasks)
    if n <= 1:
        return ("ran as one task",)
    reads = [stage.records.get(i, 0) for i in tasks]
    top = max(reads)
    fair = total / n
    reasons = []
    if top > max_share * total:
        reasons.append(f"one task read {top:,} ({top / total:.0%} of the records; limit {max_share:.0%})")
    elif top > max_fair_multiple * fair:
        reasons.append(
            f"one task read {top:,} = {top / fair:.1f}x its fair share {fair:,.0f} "
            f"(limit {max_fair_multiple:g}x)"
        )
    empty = sum(1 for r in reads if r == 0)
    if empty > max_empty_share * n:
        reasons.append(f"{empty} of {n} tasks read no record (limit {max_empty_share:.0%})")
    return tuple(reasons) or None


@dataclass
class Report:
    """What the check saw: the stages it judged and the ones that failed."""

    stages: list[Stage]
    checked: list[Stage]
    funnels: list[Funnel]
    min_records: int

    @property
    def ok(self) -> bool:
        return not self.funnels

    def text(self) -> str:
        head = (
            f"funnel check: {len(self.checked)} of {len(self.stages)} stages read >= {self.min_records:,} "
            f"shuffled records; {len(self.funnels)} funnel(s)"
        )
        return "\n".join([head, *[f"  {f.line()}" for f in self.funnels]])


def check(
    path: str | Path, min_records: int = MIN_RECORDS, groups: Iterable[str] | None = None, **limits
) -> Report:
    """Judge every stage in the event log(s) at ``path`` (see the module docstring for the rules).

    Args:
        path: an event log file or a folder of them.
        min_records: stages reading fewer shuffled records are not judged.
        groups: only the stages of these job groups (corpuslake names each stage's jobs after the stage,
            ``jobs.runtime.stage_jobs``); None: every stage.
        limits: ``max_share``, ``max_fair_multiple``, ``max_empty_share`` overrides.
    """
    stages = read_stages(path)
    if groups is not None:
        wanted = set(groups)
        stages = [s for s in stages if s.group in wanted]
    checked = [s for s in stages if s.total >= min_records]
    funnels = []
    for s in checked:
        reasons = judge(s, min_records, **limits)
        if reasons:
            funnels.append(Funnel(s, reasons))
    return Report(stages, checked, funnels, min_records)


# ---------------------------------------------------------------------------------------------- runs


def watch(conf, events: str | Path) -> None:
    """Before a run's session starts: its event log goes to ``events`` (AQE coalescing off), and every
    DataFrame action names its project call site."""
    Path(events).mkdir(parents=True, exist_ok=True)
    conf.spark.conf.update(event_log_conf(events))
    trace_call_sites()


def finish(events: str | Path, stages: list[str], min_records: int = MIN_RECORDS) -> Report | None:
    """After a watched run: stop its session (so the log is complete) and check the ``stages``' jobs.

    None when the run's session did not write the log (it was already running when the run began:
    a notebook, an in-process caller), since the event log starts with the session.
    """
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        logging_on = active.sparkContext.getConf().get("spark.eventLog.enabled", "false") == "true"
        active.stop()
        if not logging_on:
            return None
    return check(events, min_records, groups=stages)


def run_pipeline(
    conf_path: str,
    events: str | Path,
    first: str | None = "clean",
    last: str | None = "select",
    partitions: int = 8,
    overrides: list[str] | None = None,
    min_records: int = MIN_RECORDS,
) -> tuple[int, Report | None]:
    """Run the stages ``first``..``last`` in this process with the event log on, clean in full (not just
    the new bronze documents); (exit code, the check).

    The process must not hold a SparkSession yet (the event log is set when the session starts).
    """
    from pyspark.sql import SparkSession

    from jobs import cli
    from jobs.config import load_conf

    if SparkSession.getActiveSession() is not None:
        raise RuntimeError(
            "run_pipeline needs a process without a SparkSession (the event log starts with it)"
        )
    conf = load_conf(conf_path, overrides)
    conf.spark.shuffle_partitions = partitions
    watch(conf, events)
    stages = cli.stage_range(first, last)
    # full: clean recomputes silver from all of bronze; on a lake with nothing new an incremental clean
    # would do nothing and the check would judge none of its steps.
    code, _ = cli.run_stages(conf, stages, full=True)
    report = finish(events, stages, min_records)
    return code, report


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.funnel run …`` or ``python -m jobs.funnel check EVENT_LOG``; exit 1 on a funnel."""
    p = argparse.ArgumentParser(prog="python -m jobs.funnel", description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="check an event log file or a spark.eventLog.dir folder")
    c.add_argument("path")
    c.add_argument("--min-records", type=int, default=MIN_RECORDS)
    r = sub.add_parser("run", help="run stages with the event log on, then check it")
    r.add_argument("--conf", required=True, help="the profile")
    r.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--from", dest="first", default="clean")
    r.add_argument("--to", dest="last", default="select")
    r.add_argument("--events", required=True, help="the event log folder (created)")
    r.add_argument("--partitions", type=int, default=8, help="spark.sql.shuffle.partitions for the run")
    r.add_argument("--min-records", type=int, default=MIN_RECORDS)
    args = p.parse_args(argv)
    if args.command == "run":
        code, report = run_pipeline(
            args.conf, args.events, args.first, args.last, args.partitions, args.overrides, args.min_records
        )
        if code != 0:
            print(f"funnel check: the pipeline exited {code}; no check", file=sys.stderr)
            return code
    else:
        report = check(args.path, args.min_records)
    print(report.text())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
