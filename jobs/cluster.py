"""A Spark standalone cluster on this machine, started from pyspark's own distribution.

    python -m jobs.cluster start  [--workers 2] [--cores 1] [--memory 2g] [--port 7077] [--webui-port 8080]
    python -m jobs.cluster status
    python -m jobs.cluster stop

One master and ``--workers`` workers (``spark-class org.apache.spark.deploy.master.Master`` and
``…worker.Worker`` with ``SPARK_HOME`` = the installed pyspark package), all bound to 127.0.0.1. Logs, pid
files, the workers' work folders (executor logs) and ``cluster.json`` (URLs and pids) go under ``--dir``
(default ``.cache/cluster``, ignored by git). ``start`` returns once the master reports every worker ALIVE;
``stop`` ends the processes named by the pid files, and does nothing when there are none. Then:

    corpuslake run --conf conf/local.yaml --master spark://127.0.0.1:7077

Executors run Python workers with this interpreter (``PYSPARK_PYTHON`` on the workers; the driver also sets
``spark.pyspark.python``), so they import the project from the same virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from jobs.jars import REPO

DEFAULT_DIR = REPO / ".cache" / "cluster"
HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
EXECUTOR_CLASS = "CoarseGrainedExecutorBackend"
STATE = "cluster.json"


class ClusterError(RuntimeError):
    """The cluster could not be started or reached; the message is one line for the user."""


def spark_home() -> str:
    """pyspark's own Spark distribution: ``bin/spark-class``, ``jars/``."""
    import pyspark

    return os.path.dirname(os.path.abspath(pyspark.__file__))


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 on (state, ppid, …), or None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            stat = fh.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: fields after the last ')'.
    return stat.rsplit(")", 1)[1].split()


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc stat field 22), or None when it is gone or a
    zombie. Together with the pid it names one process: pids get reused, start times do not."""
    fields = _stat(pid)
    if not fields or fields[0] == "Z":
        return None
    return int(fields[19])


def _ppid(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def _pids() -> list[int]:
    return [int(n) for n in os.listdir("/proc") if n.isdigit()]


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (read from /proc)."""
    return [p for p in _pids() if _ppid(p) == pid]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, parents before their children."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop(0))
        out += kids
        todo += kids
    return out


def executor_pids(worker_pid: int) -> list[int]:
    """The executors a worker launched: its child processes running ``CoarseGrainedExecutorBackend``."""
    return [p for p in children(worker_pid) if EXECUTOR_CLASS in _cmdline(p)]


def executor_id(pid: int) -> str | None:
    """The Spark executor id on an executor process's command line (``--executor-id 0``)."""
    args = _cmdline(pid).split()
    return args[args.index("--executor-id") + 1] if "--executor-id" in args[:-1] else None


def alive(pid: int, klass: str | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``klass``, still runs that Java class: pids get reused)."""
    cmd = _cmdline(pid)
    if not cmd:
        return False
    fields = _stat(pid)
    if not fields or fields[0] == "Z":  # gone, or a zombie waiting for its parent
        return False
    return klass is None or klass in cmd


def kill(pids: list[int], sig: int = signal.SIGKILL) -> list[int]:
    """Signal each pid that still runs; the pids signalled."""
    done = []
    for pid in pids:
        try:
            os.kill(pid, sig)
            done.append(pid)
        except (ProcessLookupError, PermissionError):
            pass
    return done


def port_free(port: int, host: str = HOST) -> bool:
    """Whether a server could listen on ``port`` (as Spark's do: connections in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (for tests and ``--webui-port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    """Where a cluster's files are and how to reach its master."""

    folder: Path
    port: int = 7077
    webui_port: int = 8080

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    @property
    def webui_url(self) -> str:
        return f"http://{HOST}:{self.webui_port}"

    def pid_file(self, name: str) -> Path:
        return self.folder / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid in ``<name>.pid`` (``master``, ``worker-1``, …), or None without the file."""
        try:
            return int(self.pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None

    def worker_names(self) -> list[str]:
        return sorted(
            (p.stem for p in self.folder.glob("worker-*.pid")), key=lambda n: int(n.split("-", 1)[1])
        )

    def master_json(self, timeout: float = 5.0) -> dict:
        """The master's state (``/json/``): workers with their state, applications."""
        with urllib.request.urlopen(f"{self.webui_url}/json/", timeout=timeout) as resp:
            return json.loads(resp.read().decode())

    def alive_workers(self) -> list[dict]:
        try:
            state = self.master_json()
        except (OSError, ValueError):
            return []
        return [w for w in state.get("workers", []) if w.get("state") == "ALIVE"]

    def save(self) -> None:
        state = {
            "master_url": self.master_url,
            "webui_url": self.webui_url,
            "port": self.port,
            "webui_port": self.webui_port,
            "pids": {n: self.pid(n) for n in ["master", *self.worker_names()]},
        }
        (self.folder / STATE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: str | Path) -> Cluster:
        """The cluster whose files are in ``folder`` (ports from its ``cluster.json`` when there is one)."""
        folder = Path(folder).resolve()
        try:
            state = json.loads((folder / STATE).read_text(encoding="utf-8"))
            return cls(folder, int(state["port"]), int(state["webui_port"]))
        except (OSError, ValueError, KeyError):
            return cls(folder)


def _env(cluster: Cluster, python: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYSPARK_GATEWAY_PORT", None)  # set inside a pyspark driver; must not leak into the daemons
    env.update(
        SPARK_HOME=spark_home(),
        SPARK_LOCAL_IP=HOST,
        SPARK_LOG_DIR=str(cluster.folder),
        SPARK_DAEMON_MEMORY=env.get("SPARK_DAEMON_MEMORY", "512m"),
        # Executors inherit the worker's environment: their Python workers run the project's interpreter.
        PYSPARK_PYTHON=python,
    )
    return env


def _launch(cluster: Cluster, name: str, klass: str, args: list[str], python: str) -> int:
    log = cluster.folder / f"{name}.log"
    with open(log, "ab") as out:
        # spark-class ends in `exec java …`, so the pid is the JVM's. A new session: Ctrl-C in the terminal
        # that started the cluster does not reach it.
        proc = subprocess.Popen(
            [os.path.join(spark_home(), "bin", "spark-class"), klass, *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(cluster, python),
            cwd=cluster.folder,
            start_new_session=True,
        )
    cluster.pid_file(name).write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


def start_master(cluster: Cluster, python: str = sys.executable) -> int:
    """Start the master; its pid (also in ``master.pid``)."""
    return _launch(
        cluster,
        "master",
        MASTER_CLASS,
        ["--host", HOST, "--port", str(cluster.port), "--webui-port", str(cluster.webui_port)],
        python,
    )


def start_worker(
    cluster: Cluster, index: int, cores: int = 1, memory: str = "2g", python: str = sys.executable
) -> int:
    """Start worker ``index`` (``worker-<index>.pid``, ``.log``); its pid. Executors log under ``work/``."""
    work = cluster.folder / "work"
    work.mkdir(parents=True, exist_ok=True)
    args = ["--host", HOST, "--port", "0", "--webui-port", "0", "--cores", str(cores), "--memory", memory]
    pid = _launch(
        cluster, f"worker-{index}", WORKER_CLASS, [*args, "--work-dir", str(work), cluster.master_url], python
    )
    cluster.save()
    return pid


def wait_for_workers(
    cluster: Cluster, n: int, timeout: float = 120.0, watch: list[str] | None = None
) -> list[dict]:
    """Block until the master reports at least ``n`` ALIVE workers.

    Args:
        cluster: the cluster.
        n: how many workers must be ALIVE.
        timeout: seconds.
        watch: the processes (``master``, ``worker-3``) whose exit fails the wait at once; default all.

    Raises:
        ClusterError: the master or a worker died, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while True:
        workers = cluster.alive_workers()
        if len(workers) >= n:
            return workers
        for name in watch if watch is not None else ["master", *cluster.worker_names()]:
            pid = cluster.pid(name)
            if pid is not None and not alive(pid):
                log = cluster.folder / f"{name}.log"
                raise ClusterError(f"the {name} (pid {pid}) exited: {_last_line(log)} (log: {log})")
        if time.monotonic() > deadline:
            raise ClusterError(
                f"{len(workers)} of {n} workers ALIVE at {cluster.webui_url} after {timeout:g} s "
                f"(logs: {cluster.folder})"
            )
        time.sleep(0.5)


def start(
    folder: str | Path = DEFAULT_DIR,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    port: int = 7077,
    webui_port: int = 8080,
    timeout: float = 120.0,
    python: str = sys.executable,
) -> Cluster:
    """Start a master and ``workers`` workers, and wait until all are ALIVE.

    Args:
        folder: logs, pid files, ``cluster.json`` and the workers' ``work/`` folder.
        workers: how many workers (each ``cores`` cores and ``memory`` for executors).
        port: the master's port (``spark://127.0.0.1:<port>``).
        webui_port: the master's web UI (``start`` reads the workers' state from its ``/json/``); 0: a free
            port.
        timeout: seconds to wait for every worker to be ALIVE.
        python: the interpreter of executors' Python workers.

    Raises:
        ClusterError: a cluster already runs from ``folder``, a port is taken, or it did not come up (what
            was started is stopped again).
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    running = Cluster.load(folder)
    pid = running.pid("master")
    if pid is not None and alive(pid, MASTER_CLASS):
        raise ClusterError(
            f"a cluster already runs from {folder} (master pid {pid}, {running.master_url}); "
            "stop it first: python -m jobs.cluster stop"
        )
    webui_port = webui_port or free_port()
    for what, p in (("master port", port), ("master web UI port", webui_port)):
        if not port_free(p):
            raise ClusterError(f"the {what} {p} on {HOST} is in use; pick another (--port / --webui-port)")
    _remove_pid_files(running)
    cluster = Cluster(folder, port, webui_port)
    try:
        start_master(cluster, python)
        cluster.save()
        for i in range(1, workers + 1):
            start_worker(cluster, i, cores, memory, python)
        wait_for_workers(cluster, workers, timeout)
    except BaseException:
        stop(folder)
        raise
    return cluster


def _remove_pid_files(cluster: Cluster) -> None:
    for f in cluster.folder.glob("*.pid"):
        f.unlink(missing_ok=True)


def stop_worker(cluster: Cluster, name: str, grace: float = 10.0) -> list[int]:
    """Stop one worker and the executors it launched; the pids that were still running."""
    pid = cluster.pid(name)
    cluster.pid_file(name).unlink(missing_ok=True)
    if pid is None or not alive(pid, WORKER_CLASS):
        return []
    # A stopping worker kills its executors itself; whatever still runs after the grace period gets SIGKILL.
    tree = [p for p in descendants(pid) if alive(p)]
    kill([pid], signal.SIGTERM)
    _wait_gone([pid], grace)
    kill([p for p in [pid, *tree] if alive(p)])
    _wait_gone([pid, *tree], grace)
    return [pid, *tree]


def _wait_gone(pids: list[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)


def stop(folder: str | Path = DEFAULT_DIR, grace: float = 10.0) -> list[int]:
    """Stop the workers (and their executors), then the master, by the pid files in ``folder``.

    Safe to call twice, or when nothing was started: processes that no longer run (or whose pid now runs
    something else) are left alone.

    Returns:
        The pids that were still running.
    """
    cluster = Cluster.load(folder)
    stopped: list[int] = []
    for name in cluster.worker_names():
        stopped += stop_worker(cluster, name, grace)
    pid = cluster.pid("master")
    cluster.pid_file("master").unlink(missing_ok=True)
    if pid is not None and alive(pid, MASTER_CLASS):
        kill([pid], signal.SIGTERM)
        _wait_gone([pid], grace)
        kill([pid])
        _wait_gone([pid], grace)
        stopped.append(pid)
    return stopped


def status(folder: str | Path = DEFAULT_DIR) -> str:
    """One line per process and worker, as the pid files and the master see them."""
    cluster = Cluster.load(folder)
    names = ["master", *cluster.worker_names()]
    if not any(cluster.pid(n) for n in names):
        return f"no cluster started from {cluster.folder}"
    lines = [f"master {cluster.master_url}  web UI {cluster.webui_url}  files {cluster.folder}"]
    for name in names:
        pid = cluster.pid(name)
        klass = MASTER_CLASS if name == "master" else WORKER_CLASS
        state = "running" if pid and alive(pid, klass) else "not running"
        extra = ""
        if name != "master" and pid and state == "running":
            extra = f"  executors {executor_pids(pid) or '-'}"
        lines.append(f"  {name:<10} pid {pid}  {state}{extra}")
    try:
        state = cluster.master_json()
        for w in state.get("workers", []):
            lines.append(
                f"  worker {w.get('id')}: {w.get('state')}, {w.get('coresused')}/{w.get('cores')} cores used"
            )
        for app in state.get("activeapps", []):
            lines.append(f"  app {app.get('id')} {app.get('name')}: {app.get('state')}")
    except (OSError, ValueError):
        lines.append(f"  the master's web UI does not answer at {cluster.webui_url}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m jobs.cluster",
        description="A Spark standalone cluster on 127.0.0.1 from pyspark's own distribution.",
    )
    p.add_argument("command", choices=("start", "stop", "status"))
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="logs, pid files and work folders")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cores", type=int, default=1, help="cores per worker")
    p.add_argument("--memory", default="2g", help="memory per worker for its executors")
    p.add_argument("--port", type=int, default=7077, help="the master's port")
    p.add_argument("--webui-port", type=int, default=8080, help="the master's web UI port (0: a free one)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the workers")
    args = p.parse_args(argv)
    if args.command == "stop":
        stopped = stop(args.dir)
        print(f"stopped {len(stopped)} processes" if stopped else f"no cluster running from {args.dir}")
        return 0
    if args.command == "status":
        print(status(args.dir))
        return 0
    try:
        cluster = start(
            args.dir, args.workers, args.cores, args.memory, args.port, args.webui_port, args.timeout
        )
    except ClusterError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"cluster up: {cluster.master_url}, {args.workers} workers x {args.cores} core(s) x {args.memory}; "
        f"web UI {cluster.webui_url}; logs in {cluster.folder}\n"
        f"  corpuslake run --master {cluster.master_url} …   |   python -m jobs.cluster stop"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
