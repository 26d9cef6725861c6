"""Warm notebook kernels: one idle kernel per kernel name, started before a step needs it.

Starting an IPython kernel takes about a second (a process, its imports, its sockets),
more than a short notebook takes to run. Each process that runs notebook steps (a Dask
worker, or the driver on the ``local`` executor) keeps one started, ready kernel for each
kernel name in use; a step takes it and the pool starts the next one at once. A kernel
runs one notebook and is then shut down, so no notebook sees what another defined.

A kernel started ahead of its step cannot be given the step's environment when it
starts: when taken, its environment variables and working folder are set to what a
kernel started then would have had (``os.environ`` and the working folder at that moment).
A difference in variables that only matter when an interpreter starts (``PYTHONPATH``,
``LD_LIBRARY_PATH``, ...) makes the step start a kernel of its own instead.

Every kernel the pool hands out is tracked until it is given back, so an interrupted or
cancelled step's kernel is ended, with the processes it started (its process group).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TextIO

from runnable_dask.runtime.attempt import base_environment

KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR", "--HistoryManager.hist_file=:memory:")
"""Quiet kernels without a history file: what nbclient would add, and our log level."""
START_ONLY = ("PYTHON", "LD_", "DYLD_", "JUPYTER", "JPY_", "IPYTHON")
"""Variables read when an interpreter or kernel starts: a kernel already started cannot
take a new value of one of these, so a step whose value differs gets a kernel of its own."""
START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class KernelKey:
    """What makes two kernels interchangeable: the kernel spec and its start arguments."""

    name: str
    arguments: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class Kernel:
    """A started kernel: its manager, private folder, and what it was started with."""

    key: KernelKey
    manager: Any  # jupyter_client.AsyncKernelManager
    folder: str
    output: TextIO
    environ: dict[str, str]
    cwd: str
    language: str
    pid: int
    warm: bool = False
    owner: str | None = None
    clients: list[Any] = field(default_factory=list)

    def process_output(self) -> str:
        """What the kernel process itself printed (not its cells' output)."""
        if self.output.closed:  # the pool closed while the notebook ran
            return ""
        self.output.flush()
        self.output.seek(0)
        return self.output.read()


class KernelPool:
    """Idle kernels by :class:`KernelKey`, and the kernels lent to running steps.

    Kernels start, get ready and shut down on an event loop in a thread of the pool's
    own, so a step never waits for a kernel it does not take.
    """

    def __init__(self) -> None:
        self._folder = process_folder()
        self._lock = threading.RLock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="runnable-dask-kernels", daemon=True
        )
        self._thread.start()
        self._idle: dict[KernelKey, Future[Kernel]] = {}
        self._lent: set[Kernel] = set()
        self._pending: set[Future[Any]] = set()
        self._starting: set[asyncio.Task[Any]] = set()  # read and changed on the loop only
        self._closed = False
        self.started = 0
        """Kernels asked to start so far, warm or for a step that found none ready."""
        self.taken_warm = 0
        """Steps that found a kernel ready (or starting) and took it."""

    # --- what steps call -------------------------------------------------------------

    def prepare(self, keys: Iterable[KernelKey], launched: bool = False) -> None:
        """Start an idle kernel for each key that has none (and import papermill, which
        takes a third of a second, while nothing waits for it).

        With ``launched``, return once each new kernel's process exists (or failed to
        start): a worker starting up calls this before it registers, so its kernels are
        under way before any step can reach it, rather than after a jupyter_client
        import that its own start slows down (0.7 s measured at load 6).
        """
        with self._lock:
            if self._closed:
                return
            first = not self._idle
            processes: list[Future[None]] = []
            for key in keys:
                if key not in self._idle:
                    processes.append(Future())
                    self._idle[key] = self._start_soon(key, warm=True, launched=processes[-1])
        if launched:
            for process in processes:
                process.result(timeout=START_TIMEOUT)
        if first:  # after the kernels' start, which needs only jupyter_client
            threading.Thread(target=_import_papermill, daemon=True).start()

    def take(self, key: KernelKey, cwd: str, owner: str | None = None) -> Kernel:
        """A kernel for one notebook, as if started now in ``cwd``; the next is started.

        ``owner`` names the task that runs the notebook, for :meth:`stop`.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the kernel pool is closed: the run or worker is ending")
            waiting = self._idle.pop(key, None)
            self._idle[key] = self._start_soon(key, warm=True, after=waiting)
        kernel = self._ready(waiting, cwd) if waiting is not None else None
        if kernel is None:
            kernel = self._start_soon(key, warm=False, cwd=cwd).result(timeout=START_TIMEOUT)
        kernel.owner = owner
        with self._lock:
            self.taken_warm += kernel.warm
            self._lent.add(kernel)
            closed = self._closed
        if closed:  # closed while it started: end it rather than lend it
            _kill_group(kernel)
            _reap(kernel)
            _remove(kernel)
            raise RuntimeError("the kernel pool is closed: the run or worker is ending")
        return kernel

    def give_back(self, kernel: Kernel) -> None:
        """Shut a kernel down after its notebook (in the background)."""
        for client in kernel.clients:
            with contextlib.suppress(Exception):
                client.stop_channels()
        with self._lock:
            self._lent.discard(kernel)
            if self._closed:  # ended by close() already
                return
        self._submit(self._shutdown(kernel))

    def stop(self, owner: str) -> None:
        """End the kernel a task still runs (its run was cancelled), with its processes."""
        with self._lock:
            kernels = [k for k in self._lent if k.owner == owner]
        for kernel in kernels:
            _kill_group(kernel)

    def close(self) -> None:
        """End every kernel, idle, starting or lent, and the pool's thread; wait until
        their processes have exited.

        A kernel still starting is stopped where it is, not first waited for until it
        answers: a run's last step often takes a worker's kernel just before the run
        ends, and the one started to follow it would hold up the worker's close.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = list(self._idle.values()), {}
            lent = list(self._lent)
        for kernel in lent:  # their steps are still running: end the processes now
            _kill_group(kernel)
        with contextlib.suppress(Exception):
            self._run(self._cancel_starts(), START_TIMEOUT)
        for waiting in idle:
            self._submit(self._shutdown_when_started(waiting))
        for kernel in lent:
            _reap(kernel)
            _remove(kernel)
        while True:  # starts and shutdowns under way, including those just submitted
            with self._lock:
                pending = [f for f in self._pending if not f.done()]
            if not pending:
                break
            for future in pending:
                with contextlib.suppress(Exception):
                    future.result(timeout=START_TIMEOUT)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    # --- on the pool's loop ------------------------------------------------------------

    def _submit(self, coroutine: Coroutine[Any, Any, Any]) -> Future[Any]:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        with self._lock:
            self._pending = {f for f in self._pending if not f.done()}
            self._pending.add(future)
        return future

    def _start_soon(
        self,
        key: KernelKey,
        warm: bool,
        cwd: str | None = None,
        launched: Future[None] | None = None,
        after: Future[Kernel] | None = None,
    ) -> Future[Kernel]:
        """Start a kernel on the pool's loop; ``launched`` is set once its process exists.

        A kernel to follow one still starting (``after``) starts once that one is ready:
        on two cores, a step's kernel that shared them with the next one's start was
        ready 1.8 s after its launch (a worker's timeline at load 5).
        """
        with self._lock:
            self.started += 1
        if after is not None and not after.done():
            return self._submit(self._cancellable(self._start_after(after, key)))
        return self._submit(self._cancellable(self._start(key, warm, cwd, launched)))

    async def _cancellable(self, start: Coroutine[Any, Any, Kernel]) -> Kernel:
        """A kernel's start, which :meth:`close` can stop (it then shuts the kernel down)."""
        task = asyncio.current_task()
        assert task is not None
        self._starting.add(task)
        try:
            return await start
        finally:
            self._starting.discard(task)

    async def _cancel_starts(self) -> None:
        """Stop the kernels still starting, and wait until each has shut down."""
        starting = list(self._starting)
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)

    async def _start_after(self, before: Future[Kernel], key: KernelKey) -> Kernel:
        with contextlib.suppress(Exception):  # a failed start: the step says why
            await asyncio.wrap_future(before)
        if self._closed:
            raise RuntimeError("the kernel pool is closed: the run or worker is ending")
        return await self._start(key, warm=True)

    def _run(self, coroutine: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return self._submit(coroutine).result(timeout=timeout)

    async def _start(
        self,
        key: KernelKey,
        warm: bool,
        cwd: str | None = None,
        launched: Future[None] | None = None,
    ) -> Kernel:
        """Start a kernel and wait until it answers.

        A warm kernel starts with the process's environment as it is outside any step
        (no step's secrets or run id), in the process's working folder.
        """
        try:
            return await self._launch_and_greet(key, warm, cwd, launched)
        finally:
            if launched is not None and not launched.done():  # it failed before its process
                launched.set_result(None)

    async def _launch_and_greet(
        self, key: KernelKey, warm: bool, cwd: str | None, launched: Future[None] | None
    ) -> Kernel:
        manager_class = _manager_class()
        folder = tempfile.mkdtemp(prefix="k-", dir=self._folder)
        output = open(os.path.join(folder, "kernel.log"), "w+")  # noqa: SIM115 (kept open)
        manager = manager_class(kernel_name=key.name)
        manager.transport = "ipc"  # sockets are files: no port race, no TCP to warn about
        manager.ip = os.path.join(folder, "kernel")
        manager.connection_file = os.path.join(folder, "connection.json")
        environ = base_environment() if warm else dict(os.environ)
        cwd = cwd or os.getcwd()
        try:
            await manager.start_kernel(
                extra_arguments=[*KERNEL_ARGUMENTS, *key.arguments],
                env=environ,
                cwd=cwd,
                stdout=output,
                stderr=output,
            )
            if launched is not None:
                launched.set_result(None)
            info = await _kernel_info(manager)
        except BaseException:
            with contextlib.suppress(Exception):
                await manager.shutdown_kernel(now=True)
            output.close()
            shutil.rmtree(folder, ignore_errors=True)
            raise
        manager.lent_to = []  # clients a step's notebook opens, closed when it is given back
        return Kernel(
            key=key,
            manager=manager,
            folder=folder,
            output=output,
            environ=environ,
            cwd=cwd,
            language=info["content"].get("language_info", {}).get("name", ""),
            pid=manager.provisioner.pid,
            warm=warm,
            clients=manager.lent_to,
        )

    async def _align(self, kernel: Kernel, cwd: str) -> bool:
        """Give a warm kernel the environment and working folder of a kernel started now.

        False when it cannot (it died while idle, a variable only read at start differs,
        or the kernel is not Python): the step then starts a kernel of its own.
        """
        if not await kernel.manager.is_alive():  # it died while idle (killed, out of memory)
            return False
        now = dict(os.environ)
        changed = {n: v for n, v in now.items() if kernel.environ.get(n) != v}
        removed = [n for n in kernel.environ if n not in now]
        if any(n.startswith(START_ONLY) for n in [*changed, *removed]):
            return False
        if not changed and not removed and cwd == kernel.cwd:
            return True
        if kernel.language != "python":
            return False
        code = (
            f"(lambda os: (os.environ.update({changed!r}), "
            f"[os.environ.pop(n, None) for n in {removed!r}], os.chdir({cwd!r})))"
            "(__import__('os'))"
        )
        client = _shell_client(kernel.manager)
        try:
            msg_id = client.execute(code, silent=True, store_history=False)
            reply = await _reply_while_alive(client, kernel.manager, msg_id)
        finally:
            client.stop_channels()
        return bool(reply["content"]["status"] == "ok")

    def _ready(self, waiting: Future[Kernel], cwd: str) -> Kernel | None:
        """The idle kernel, once started, aligned with this step; None if it cannot serve."""
        try:
            kernel = waiting.result(timeout=START_TIMEOUT)
        except Exception:  # it failed to start (a kernel started for the step says why)
            self._submit(self._shutdown_when_started(waiting))  # or is starting still
            return None
        try:
            if self._run(self._align(kernel, cwd), START_TIMEOUT):
                return kernel
        except Exception:
            pass
        self._submit(self._shutdown(kernel))
        return None

    async def _shutdown(self, kernel: Kernel) -> None:
        with contextlib.suppress(Exception):
            await kernel.manager.shutdown_kernel(now=True)
        _reap(kernel)
        _remove(kernel)

    async def _shutdown_when_started(self, waiting: Future[Kernel]) -> None:
        with contextlib.suppress(Exception, asyncio.CancelledError):  # stopped by close()
            await self._shutdown(await asyncio.wrap_future(waiting))


def _shell_client(manager: Any) -> Any:
    """A client on the shell channel only. Its output channel stays closed: the kernel
    greets only the first subscriber to its output (XPUB), and that must be the
    notebook's client, which waits for the greeting (else for 0.2 s) before it runs."""
    client = manager.client()
    client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    return client


async def _reply_while_alive(client: Any, manager: Any, msg_id: str) -> dict[str, Any]:
    """The kernel's reply to ``msg_id``. A kernel killed just before (its process not yet
    gone when the pool looked) fails this within a second, not after ``START_TIMEOUT``."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            return dict(await client._recv_reply(msg_id, timeout=1))
        except TimeoutError:
            if not await manager.is_alive():
                raise RuntimeError("the kernel died before it replied") from None
            if time.monotonic() > deadline:
                raise


async def _kernel_info(manager: Any) -> dict[str, Any]:
    """The kernel's answer to ``kernel_info``, once it answers (it is ready then)."""
    client = _shell_client(manager)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            try:
                return dict(await client.kernel_info(reply=True, timeout=1))
            except TimeoutError:
                if not await manager.is_alive():
                    raise RuntimeError("the kernel died while it started") from None
                if time.monotonic() > deadline:
                    raise
    finally:
        client.stop_channels()


_imports = threading.Lock()


def import_notebook_stack() -> None:
    """Import papermill and what it brings (nbclient, jupyter_client, nbformat), one
    thread at a time: two threads entering that stack by different modules at once can
    meet a partly imported module ("cannot import name 'AsyncKernelManager'")."""
    with _imports:
        import nbformat  # noqa: F401
        import papermill  # noqa: F401


def _import_kernel_client() -> None:
    """Import jupyter_client alone (under the same lock): a kernel's start needs only it,
    and a worker's first kernel then starts before papermill has been imported."""
    with _imports:
        import jupyter_client  # noqa: F401


def _import_papermill() -> None:
    """What the first notebook step of a process would otherwise wait for: imports, and
    the notebook schema's validator (compiled on first use)."""
    import_notebook_stack()
    import nbformat

    import runnable_dask.runtime.notebook_task  # noqa: F401

    nbformat.validate(nbformat.v4.new_notebook())


_FOLDERS = "runnable-dask-kernels-"


def process_folder() -> str:
    """This process's scratch folder: its kernels' sockets, connection files and output,
    and its notebook steps' private copies. Removed by :func:`close_pool`; a process
    killed outright leaves it behind, and the first pool started on the machine after
    removes the folders of processes that no longer run."""
    base = tempfile.gettempdir()
    _remove_folders_of_ended_processes(base)
    folder = os.path.join(base, f"{_FOLDERS}{os.getpid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


@functools.cache
def _remove_folders_of_ended_processes(base: str) -> None:
    for name in os.listdir(base):
        if name.startswith(_FOLDERS) and name[len(_FOLDERS) :].isdigit():
            pid = int(name[len(_FOLDERS) :])
            if pid != os.getpid() and not _running(pid):
                shutil.rmtree(os.path.join(base, name), ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _kill_group(kernel: Kernel) -> None:
    """Kill the kernel and what it started: it leads a process group of its own."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(kernel.pid, signal.SIGKILL)


def _reap(kernel: Kernel) -> None:
    process = getattr(kernel.manager.provisioner, "process", None)
    if process is not None:
        with contextlib.suppress(Exception):
            process.wait(timeout=5)


def _remove(kernel: Kernel) -> None:
    kernel.output.close()
    shutil.rmtree(kernel.folder, ignore_errors=True)


@functools.cache
def _manager_class() -> type:
    """An asynchronous kernel manager whose clients are quick to get ready, and that
    remembers them, so the channels of the client nbclient opens for a notebook can be
    closed afterwards (it leaves them open when it does not own the manager)."""
    from queue import Empty

    _import_kernel_client()
    from jupyter_client import AsyncKernelClient, AsyncKernelManager

    class PooledKernelClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            """Ready once the kernel answers and its output channel is connected.

            jupyter_client's own wait then listens until the output channel has been
            quiet for 0.2 s, which was most of a short notebook's time; the messages it
            would flush belong to no cell, and nbclient ignores them anyway.
            """
            deadline = time.monotonic() + (timeout or START_TIMEOUT)
            while True:
                msg_id = self.kernel_info()
                try:
                    reply = await self._recv_reply(msg_id, timeout=1)
                    await self.iopub_channel.get_msg(timeout=0.2)  # a greeting or a status
                except (TimeoutError, Empty):
                    if not await self.is_alive():
                        raise RuntimeError("Kernel died before replying to kernel_info") from None
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"Kernel didn't respond in {timeout} seconds") from None
                    continue
                self._handle_kernel_info_reply(reply)
                return

    class PooledKernelManager(AsyncKernelManager):
        lent_to: list[Any] | None = None

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.client_factory = PooledKernelClient

        def client(self, **kwargs: Any) -> Any:
            client = super().client(**kwargs)
            if self.lent_to is not None:
                self.lent_to.append(client)
            return client

    return PooledKernelManager


# --- the pool of this process ------------------------------------------------------------


class _ThisProcess:
    """The process's pool, and how many runs in this process use it."""

    lock = threading.Lock()
    pool: KernelPool | None = None
    users = 0


def kernel_pool() -> KernelPool:
    """This process's pool, started on first use; ended at exit at the latest."""
    with _ThisProcess.lock:
        if _ThisProcess.pool is None:
            _ThisProcess.pool = KernelPool()
        return _ThisProcess.pool


def current_pool() -> KernelPool | None:
    """This process's pool if it is running (it is not started for asking)."""
    return _ThisProcess.pool


def close_pool() -> None:
    """End this process's pool and every kernel in it, and remove its scratch folder
    (a worker closing, the last run in this process ending, an exit): no notebook
    step runs here any more, or if one still does (its run was interrupted), it ends
    with the kernel it was using."""
    with _ThisProcess.lock:
        pool, _ThisProcess.pool = _ThisProcess.pool, None
    if pool is not None:
        pool.close()
    folder = os.path.join(tempfile.gettempdir(), f"{_FOLDERS}{os.getpid()}")
    shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def pool_in_use(keys: Iterable[KernelKey]) -> Iterator[KernelPool]:
    """Warm ``keys`` for a run in this process; the last run to leave ends the pool, so
    no kernel outlives the runs that used it."""
    with _ThisProcess.lock:
        _ThisProcess.users += 1
    try:
        pool = kernel_pool()
        pool.prepare(keys)
        yield pool
    finally:
        with _ThisProcess.lock:
            _ThisProcess.users -= 1
            last = _ThisProcess.users == 0
        if last:
            close_pool()


atexit.register(close_pool)
