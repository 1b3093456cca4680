"""Call sites in Spark's event log: make every DataFrame action and write name the project line that called
it, so that the funnel check (``jobs.funnel``) can point at the code behind a stage.
"""

from __future__ import annotations

import functools
import traceback

# The project's top folders: a frame under one of them is the project's own code.
PROJECT_ROOTS = ("jobs/", "udfs/", "schemas/", "bench/", "tests/", "notebooks/")
# The check's own modules: their frames (the wrappers below, the funnel run) are never the call site.
_OWN = ("jobs/funnel.py", "jobs/call_sites.py")

_traced = False


def _project_frames(limit: int = 4) -> list[str]:
    """The innermost project frames of the current stack as ``path:line`` (the check's own skipped)."""
    out = []
    for frame in reversed(traceback.extract_stack()):
        path = frame.filename.replace("\\", "/")
        if path.endswith(_OWN) or "/site-packages/" in path or "/pyspark/" in path:
            continue
        if any(f"/{r}" in path for r in PROJECT_ROOTS):
            out.append(f"{path}:{frame.lineno}")
            if len(out) >= limit:
                break
    return out


def trace_call_sites() -> None:
    """Make every DataFrame action and write name its project call site in Spark's event log.

    PySpark sets the call site for ``collect``, ``toPandas`` and a few more; ``count``, writes and
    checkpoints show as ``count at <unknown>:0``. This wraps them (once per process) to set the short
    call site to ``action at path:line < caller:line …`` from the innermost project frames, as PySpark's
    own ``SCCallSiteSync`` does, which it then leaves alone. For diagnostics only: ``run`` calls it.
    """
    global _traced
    if _traced:
        return
    from pyspark.sql.classic.dataframe import DataFrame
    from pyspark.sql.readwriter import DataFrameWriter
    from pyspark.traceback_utils import SCCallSiteSync

    def wrap(cls, name):
        fn = getattr(cls, name, None)
        if fn is None:
            return

        @functools.wraps(fn)
        def call(self, *args, **kwargs):
            frames = _project_frames()
            sc = self._sc if hasattr(self, "_sc") else self._spark.sparkContext
            if SCCallSiteSync._spark_stack_depth or not frames:
                return fn(self, *args, **kwargs)
            sc._jsc.setCallSite(f"{name} at {' < '.join(frames)}")
            SCCallSiteSync._spark_stack_depth += 1
            try:
                return fn(self, *args, **kwargs)
            finally:
                SCCallSiteSync._spark_stack_depth -= 1
                sc._jsc.setCallSite(None)

        setattr(cls, name, call)

    for name in (
        "count",
        "collect",
        "first",
        "head",
        "take",
        "toPandas",
        "toLocalIterator",
        "isEmpty",
        "foreach",
        "foreachPartition",
        "localCheckpoint",
        "checkpoint",
    ):
        wrap(DataFrame, name)
    for name in ("save", "parquet", "json", "csv", "text", "orc", "saveAsTable", "insertInto"):
        wrap(DataFrameWriter, name)
    _traced = True
