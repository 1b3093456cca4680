"""Delta Lake's Spark jars: where the install step caches them, and which of them a session loads.

``make install`` runs ``mvn dependency:copy-dependencies`` on ``deps/pom.xml`` into
``.cache/jars/maven`` and then ``python -m jobs.jars prune``, which keeps only the jars pyspark does not
already ship (delta-spark, delta-storage, the kernel, …). Delta's pom also names older jackson, hadoop,
parquet and scala jars; putting those next to Spark's own would risk two versions of one class on the
classpath.

After that, runs are offline: ``jobs.session.get_spark`` adds the cached jars with ``spark.jars`` (which also
ships them to a cluster's executors).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The jar cache of an editable install (the repo's ignored .cache/); CORPUSLAKE_JARS points elsewhere.
DEFAULT_DIR = REPO / ".cache" / "jars"
_VERSIONED = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[\w.\-]*)\.jar$")


def jars_dir() -> Path:
    """The folder whose ``*.jar`` files a session loads for the delta-spark engine."""
    return Path(os.environ.get("CORPUSLAKE_JARS") or DEFAULT_DIR)


def delta_jars(folder: str | Path | None = None) -> list[str]:
    """The cached jars (absolute paths, sorted), or [] when delta-spark's jar is not among them."""
    folder = Path(folder) if folder else jars_dir()
    jars = sorted(str(p.resolve()) for p in folder.glob("*.jar"))
    return jars if any(Path(j).name.startswith("delta-spark_") for j in jars) else []


def artifact(jar_name: str) -> str:
    """``delta-spark_2.13-4.3.1.jar`` → ``delta-spark_2.13``."""
    m = _VERSIONED.match(jar_name)
    return m.group("artifact") if m else jar_name.removesuffix(".jar")


def spark_jars() -> set[str]:
    """Artifact names of the jars pyspark ships."""
    import pyspark

    return {artifact(p.name) for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def prune(src: Path, dest: Path) -> list[str]:
    """Copy the jars of ``src`` that Spark does not ship into ``dest``; remove stale jars there.

    Returns:
        The jar names now in ``dest``.
    """
    shipped = spark_jars()
    keep = sorted(p.name for p in src.glob("*.jar") if artifact(p.name) not in shipped)
    if not any(k.startswith("delta-spark_") for k in keep):
        raise SystemExit(f"error: no delta-spark jar in {src}; did the Maven download fail?")
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.jar"):
        if old.name not in keep:
            old.unlink()
    for name in keep:
        shutil.copy2(src / name, dest / name)
    return keep


USAGE = (
    "usage: python -m jobs.jars prune MAVEN_OUTPUT_DIR JARS_DIR\n"
    "       python -m jobs.jars list    (the cached jars, comma-separated, for spark-submit --jars)"
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["list"]:
        # spark-submit starts the driver's JVM before our code runs, so spark.jars set by the session comes
        # too late for the driver's classpath: spark-submit needs them as --jars.
        jars = delta_jars()
        if not jars:
            print(f"error: no delta-spark jar in {jars_dir()}; run `make install`", file=sys.stderr)
            return 1
        print(",".join(jars))
        return 0
    if len(args) != 3 or args[0] != "prune":
        print(USAGE, file=sys.stderr)
        return 2
    kept = prune(Path(args[1]), Path(args[2]))
    print(f"delta-spark jars: {len(kept)} in {args[2]} ({', '.join(kept)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
