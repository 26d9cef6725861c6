"""A local Dask cluster that outlives runs: what ``runnable-dask cluster`` starts and stops.

A ``dask scheduler`` and a ``dask worker`` launcher (one nanny and worker process per
worker) on 127.0.0.1, each in a session of its own with no terminal and output to log
files, so closing the terminal that started them does not stop them. A small JSON state
file says where the cluster is and which processes are its own; runs read it to find the
cluster (:func:`find`), ``status`` and ``stop`` read it too.

The state file is per user, not per project (like a Jupyter server's runtime files): the
cluster holds this machine's cores and ports, so one serves every project run from any
folder. By default it is ``$XDG_RUNTIME_DIR/runnable-dask/cluster.json`` (a folder only
this user can read, emptied at logout or reboot, when the processes are gone anyway),
else ``~/.local/state/runnable-dask/cluster.json``; ``RUNNABLE_DASK_CLUSTER_FILE`` points
elsewhere. The scheduler's and workers' logs and the workers' spill folder sit next to it.

The cluster's processes are recognised by their session and interpreter, so ``stop``
and the cleaning of a stale file (its scheduler died) end the workers too, even after
their launcher is gone, and never touch a process that only reuses a recorded pid.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from runnable_dask.exceptions import RunnableDaskError
from runnable_dask.sdk.resources import amount_text

STATE_ENV = "RUNNABLE_DASK_CLUSTER_FILE"
STATE_NAME = "cluster.json"
DEFAULT_DASHBOARD = "127.0.0.1:8787"
# The dashboard's Pipeline page, a scheduler preload (runnable_dask.dashboard.PRELOAD),
# named and not imported: importing it loads bokeh, 0.3-0.6 s that a run on a running
# cluster does not need.
PIPELINE_PAGE = "runnable_dask.dashboard"
# Workers whose scheduler is gone for this long exit by themselves.
DEATH_TIMEOUT = 60
_DASK = str(Path(sys.executable).with_name("dask"))


class StandingClusterError(RunnableDaskError):
    """The standing cluster could not be started, reached or stopped."""


@dataclass(frozen=True)
class Process:
    """A process the cluster started: its pid and start time (a reused pid differs)."""

    pid: int
    created: float

    @classmethod
    def of(cls, pid: int) -> Process:
        return cls(pid, psutil.Process(pid).create_time())

    def alive(self) -> bool:
        try:
            process = psutil.Process(self.pid)
            return (
                abs(process.create_time() - self.created) < 0.01
                and process.status() != psutil.STATUS_ZOMBIE
            )
        except psutil.Error:
            return False


@dataclass(frozen=True)
class ClusterState:
    """What the state file holds."""

    address: str
    dashboard: str | None
    scheduler: Process
    workers: Process
    n_workers: int
    threads_per_worker: int
    memory_limit: str
    python: str
    environment: str
    versions: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    resources: dict[str, float] = field(default_factory=dict)
    """What each worker offers (``--resources``), for steps that ask for it."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> ClusterState:
        data = json.loads(text)
        data["scheduler"] = Process(**data["scheduler"])
        data["workers"] = Process(**data["workers"])
        return cls(**data)

    def same_environment(self) -> bool:
        """Started from this environment with the packages this process has loaded: the
        scheduler and workers then run what this process runs, no need to ask them."""
        return self.environment == sys.prefix and self.versions == loaded_versions()


@dataclass(frozen=True)
class Found:
    """What a run finds: a live cluster's state, or a note on why there is none to use."""

    state: ClusterState | None = None
    note: str = ""


def state_path() -> Path:
    """Where the state file is (see the module's docstring for why there)."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override).expanduser()
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "runnable-dask" / STATE_NAME
    return Path.home() / ".local" / "state" / "runnable-dask" / STATE_NAME


@functools.cache
def loaded_versions() -> dict[str, str]:
    """The versions the cluster's processes must share with a run, as loaded here."""
    import cloudpickle
    import dask
    import distributed
    import msgpack
    import toolz
    import tornado

    return {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "cloudpickle": cloudpickle.__version__,
        "msgpack": ".".join(map(str, msgpack.version)),
        "tornado": tornado.version,
        "toolz": toolz.__version__,
        "runnable_dask": importlib.metadata.version("runnable_dask"),
    }


def read(path: Path | None = None) -> ClusterState | None:
    """The recorded cluster, alive or not; None when there is no (readable) state file."""
    path = path or state_path()
    try:
        return ClusterState.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise StandingClusterError(
            f"the cluster state file {path} cannot be read ({type(exc).__name__}: {exc}); "
            "remove it, then start the cluster again (runnable-dask cluster start)"
        ) from exc


def find(path: Path | None = None) -> Found:
    """The running cluster a run should use. A state file whose scheduler is gone is
    stale: its leftover workers are ended, the file removed, and the note says so."""
    path = path or state_path()
    try:
        state = read(path)
    except StandingClusterError as exc:
        return Found(note=str(exc))
    if state is None:
        return Found()
    if state.scheduler.alive():
        return Found(state)
    end_processes(state, grace=0)  # workers would wait DEATH_TIMEOUT for their scheduler
    path.unlink(missing_ok=True)
    return Found(note=stale_note(state, path))


def stale_note(state: ClusterState, path: Path) -> str:
    return (
        f"the runnable-dask cluster at {state.address} is gone (its scheduler, pid "
        f"{state.scheduler.pid}, is no longer running); its leftover processes were ended "
        f"and its state file {path} removed. Start it again with: runnable-dask cluster start"
    )


# --- start ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """What ``runnable-dask cluster start`` is asked for."""

    n_workers: int
    threads_per_worker: int
    memory_limit: str = "auto"
    dashboard_address: str = DEFAULT_DASHBOARD
    port: int = 0
    timeout: float = 60.0
    resources: dict[str, float] = field(default_factory=dict)


def start(sizes: Sizes, path: Path | None = None) -> ClusterState:
    """Start the cluster detached, wait until every worker has joined, record it.

    Refused when one is running already; a stale state file is cleaned first. A start
    that fails ends whatever it started and shows the end of the failing process's log.
    """
    path = path or state_path()
    found = find(path)
    if found.state is not None:
        raise StandingClusterError(
            f"a runnable-dask cluster is already running at {found.state.address} "
            f"(dashboard {found.state.dashboard}); stop it first: runnable-dask cluster stop"
        )
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    scheduler_file = folder / "scheduler-file.json"
    scheduler_file.unlink(missing_ok=True)
    began = time.time()
    scheduler = _spawn(
        [
            *(_DASK, "scheduler", "--host", "127.0.0.1", "--port", str(sizes.port)),
            *("--dashboard-address", sizes.dashboard_address),
            *("--preload", PIPELINE_PAGE),  # the dashboard's Pipeline page
            *("--scheduler-file", str(scheduler_file)),
        ],
        folder,
        folder / "scheduler.log",
    )
    workers: subprocess.Popen | None = None
    try:
        address, dashboard = _wait_for_scheduler(
            scheduler, scheduler_file, folder / "scheduler.log", began + sizes.timeout
        )
        workers = _spawn(
            [
                *(_DASK, "worker", address, "--host", "127.0.0.1", "--name", "worker"),
                *("--nworkers", str(sizes.n_workers)),
                *("--nthreads", str(sizes.threads_per_worker)),
                *("--memory-limit", sizes.memory_limit),
                *("--dashboard-address", "127.0.0.1:0"),
                *("--local-directory", str(folder / "worker-space")),
                *("--death-timeout", str(DEATH_TIMEOUT)),
                *_resources_option(sizes.resources),
            ],
            folder,
            folder / "workers.log",
        )
        _wait_for_workers(address, sizes, workers, folder / "workers.log", began)
        state = ClusterState(
            address=address,
            dashboard=dashboard,
            scheduler=Process.of(scheduler.pid),
            workers=Process.of(workers.pid),
            n_workers=sizes.n_workers,
            threads_per_worker=sizes.threads_per_worker,
            memory_limit=sizes.memory_limit,
            python=sys.executable,
            environment=sys.prefix,
            versions=loaded_versions(),
            started=began,
            resources=dict(sizes.resources),
        )
    except BaseException:
        for process in (workers, scheduler):
            if process is not None:
                _end_session(process.pid, began)
        raise
    _write(path, state)
    return state


def _spawn(command: list[str], folder: Path, log: Path) -> subprocess.Popen:
    """A process in a new session (no terminal, no SIGHUP), output appended to ``log``."""
    environment = {k: v for k, v in os.environ.items() if k != "DASK_SCHEDULER_ADDRESS"}
    with open(log, "ab") as handle:
        return subprocess.Popen(
            command,
            cwd=folder,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_for_scheduler(
    process: subprocess.Popen, scheduler_file: Path, log: Path, deadline: float
) -> tuple[str, str | None]:
    while True:
        if scheduler_file.exists():
            with contextlib.suppress(ValueError):  # still being written
                info = json.loads(scheduler_file.read_text(encoding="utf-8"))
                port = info.get("services", {}).get("dashboard")
                dashboard = f"http://127.0.0.1:{port}/status" if port else None
                return info["address"], dashboard
        if process.poll() is not None:
            raise StandingClusterError(
                f"the Dask scheduler exited while starting:\n{_tail(log)}\n  (log: {log})"
            )
        if time.time() > deadline:
            raise StandingClusterError(
                f"the Dask scheduler did not start in time; see {log}, or raise --timeout"
            )
        time.sleep(0.05)


def _wait_for_workers(
    address: str, sizes: Sizes, process: subprocess.Popen, log: Path, began: float
) -> None:
    from distributed import Client

    with Client(address, timeout=sizes.timeout, set_as_default=False) as client:
        while len(client.scheduler_info(n_workers=-1)["workers"]) < sizes.n_workers:
            if process.poll() is not None:
                raise StandingClusterError(
                    f"the Dask workers exited while starting:\n{_tail(log)}\n  (log: {log})"
                )
            if time.time() > began + sizes.timeout:
                raise StandingClusterError(
                    f"{sizes.n_workers} workers did not join in {sizes.timeout:g} s; see "
                    f"{log}, or raise --timeout"
                )
            time.sleep(0.1)


def _write(path: Path, state: ClusterState) -> None:
    """Written whole or not at all: a run reading it never sees half a file."""
    partial = path.with_suffix(".tmp")
    partial.write_text(state.to_json(), encoding="utf-8")
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def _resources_option(resources: dict[str, float]) -> list[str]:
    """``--resources "GPU=1 MEMORY=8e9"`` for each worker, or nothing."""
    if not resources:
        return []
    return ["--resources", " ".join(f"{k}={amount_text(v)}" for k, v in resources.items())]


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join(f"  | {line}" for line in text.rstrip().splitlines()[-lines:])


# --- status --------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerStatus:
    name: str
    address: str
    threads: int
    memory_limit: int
    memory: int
    processing: int
    in_memory: int
    groups: dict[str, int]
    resources: dict[str, float] = field(default_factory=dict)


def workers(state: ClusterState, timeout: float = 5.0) -> list[WorkerStatus]:
    """Each worker with its threads, memory and tasks (processing, held in memory)."""
    from dask.utils import key_split
    from distributed import Client

    try:
        client = Client(state.address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise StandingClusterError(
            f"the scheduler at {state.address} (pid {state.scheduler.pid}) runs but does "
            f"not answer within {timeout:g} s ({exc}); see {state_path().parent}/"
            "scheduler.log, or stop it: runnable-dask cluster stop"
        ) from exc
    with client:
        info = client.scheduler_info(n_workers=-1)["workers"]
        processing = client.processing()
        held = client.has_what()
    rows = []
    for address, worker in sorted(info.items(), key=lambda item: str(item[1].get("name"))):
        running = processing.get(address, ())
        rows.append(
            WorkerStatus(
                name=str(worker.get("name", address)),
                address=address,
                threads=int(worker.get("nthreads", 0)),
                memory_limit=int(worker.get("memory_limit") or 0),
                memory=int(worker.get("metrics", {}).get("memory") or 0),
                processing=len(running),
                in_memory=len(held.get(address, ())),
                groups=dict(Counter(key_split(key) for key in running)),
                resources=dict(worker.get("resources") or {}),
            )
        )
    return rows


# --- stop ----------------------------------------------------------------------------


def stop(path: Path | None = None, timeout: float = 10.0) -> ClusterState | None:
    """Shut the cluster down and wait until none of its processes is left.

    The scheduler is asked to close with its workers; what is still running after
    ``timeout`` seconds is terminated, then killed. Returns the cluster stopped, or None
    when none was recorded.
    """
    path = path or state_path()
    state = read(path)
    if state is None:
        return None
    if state.scheduler.alive():
        _shutdown(state.address, timeout)
    left = end_processes(state, grace=timeout)
    if left:
        raise StandingClusterError(
            f"processes of the cluster would not end: {', '.join(map(str, left))}; "
            "end them by hand (kill PID), then run runnable-dask cluster stop again"
        )
    path.unlink(missing_ok=True)
    return state


def _shutdown(address: str, timeout: float) -> None:
    from distributed import Client

    with contextlib.suppress(OSError, TimeoutError):
        client = Client(address, timeout=min(timeout, 5.0), set_as_default=False)
        with contextlib.suppress(Exception):  # the scheduler going away ends the call
            client.shutdown()
        with contextlib.suppress(Exception):
            client.close(timeout=2)


def end_processes(state: ClusterState, grace: float = 5.0) -> list[int]:
    """End every process of the cluster (see :func:`processes`); the pids left, if any."""
    deadline = time.monotonic() + grace
    remaining = processes(state)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = processes(state)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for process in remaining:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        _, remaining = psutil.wait_procs(remaining, timeout=5)
    return [process.pid for process in remaining]


def processes(state: ClusterState) -> list[psutil.Process]:
    """The live processes the cluster started: in the scheduler's or the launcher's
    session, started no earlier than the cluster, running its interpreter."""
    return _in_sessions({state.scheduler.pid, state.workers.pid}, state.started, state.python)


def _end_session(session: int, since: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        remaining = _in_sessions({session}, since, sys.executable)
        for process in remaining:
            with contextlib.suppress(psutil.Error):
                process.send_signal(sig)
        psutil.wait_procs(remaining, timeout=5)


def _in_sessions(sessions: set[int], since: float, python: str) -> list[psutil.Process]:
    executable = os.path.realpath(python)
    found = []
    for process in psutil.process_iter(["create_time"]):
        try:
            if (
                os.getsid(process.pid) in sessions
                and process.info["create_time"] >= since - 1
                and os.path.realpath(process.exe()) == executable
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                found.append(process)
        except (OSError, psutil.Error):
            continue
    return found
