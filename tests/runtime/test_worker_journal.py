"""Each process's journal of checkpoints, read by every other process of the run: a step
kept by one process (a worker, here a real child process) is found by another, and a
record cut short (its writer killed while appending) is read as not kept."""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path

from runnable_dask.runtime import checkpoint, worker_journal
from runnable_dask.runtime.events import StepEnded
from runnable_dask.stores.catalog import RunCatalog

DONE = checkpoint.Checkpoint("next", {}, StepEnded("mine", "mine", (), "mine", "task", "SUCCESS"))

KEEP_IN_A_CHILD = """
import sys
from runnable_dask.runtime import checkpoint, worker_journal
from runnable_dask.runtime.events import StepEnded
from runnable_dask.stores.catalog import RunCatalog

files = checkpoint.FileCheckpoints(RunCatalog(sys.argv[1], "r"))
for name in sys.argv[2:]:
    ended = StepEnded(name, name, (), name, "task", "SUCCESS")
    files.keep(name, checkpoint.Checkpoint("next", {}, ended))
"""


def keep_in_a_child(location: Path, *names: str) -> None:
    subprocess.run([sys.executable, "-c", KEEP_IN_A_CHILD, str(location), *names], check=True)


def journals(location: Path, run_id: str = "r") -> list[Path]:
    return sorted((location / run_id / checkpoint.WORKERS).glob("*.journal"))


def test_a_step_kept_by_another_process_is_found(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    files = checkpoint.FileCheckpoints(RunCatalog(str(location), "r"))
    files.keep("mine", DONE)
    assert files.load("a") is None  # looked before the other process kept it
    keep_in_a_child(location, "a", "b")
    keep_in_a_child(location, "c")

    assert len(journals(location)) == 3  # one per process
    assert files.load("mine") == DONE
    assert [files.load(n).event.internal_name for n in "abc"] == ["a", "b", "c"]  # type: ignore[union-attr]
    assert files.load("d") is None
    assert set(checkpoint.load_all(files.catalog)) == {"mine", "a", "b", "c"}


def test_a_record_cut_short_reads_as_not_kept(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    keep_in_a_child(location, "a", "b")
    [path] = journals(location)
    path.write_bytes(path.read_bytes()[:-5])  # the writer killed while appending "b"

    files = checkpoint.FileCheckpoints(RunCatalog(str(location), "r"))
    assert files.load("a") is not None
    assert files.load("b") is None
    assert set(checkpoint.load_all(files.catalog)) == {"a"}


def test_a_resumed_run_finds_steps_kept_as_files_of_their_own(tmp_path: Path) -> None:
    """An earlier run of the same folder that ran in-process or on an object store."""
    catalog = RunCatalog(str(tmp_path / "catalog"), "r")
    checkpoint.save(catalog, "earlier", DONE)
    assert checkpoint.FileCheckpoints(catalog).load("earlier") is None  # not looked for
    assert checkpoint.FileCheckpoints(catalog, resumed=True).load("earlier") == DONE


def test_a_process_serving_many_runs_keeps_few_journals_open(tmp_path: Path) -> None:
    """A standing cluster's worker runs one run after another: it closes the journals
    of the oldest, and a step kept for that run afterwards goes to a new journal."""
    runs = [
        RunCatalog(str(tmp_path / "catalog"), f"run-{i}")
        for i in range(worker_journal.RUNS_OPEN + 1)
    ]
    first = runs[0]
    for catalog in runs:
        checkpoint.FileCheckpoints(catalog).keep("a", DONE)

    checkpoint.FileCheckpoints(first).keep("b", DONE)
    assert len(journals(tmp_path / "catalog", "run-0")) == 2
    assert set(checkpoint.load_all(first)) == {"a", "b"}
    assert checkpoint.FileCheckpoints(first).load("a") == DONE


APPEND_IN_A_CHILD = """
import os, sys, time
from runnable_dask.runtime import worker_journal

journals = worker_journal.of(sys.argv[1])
i = 0
while not os.path.exists(sys.argv[2]) and i < 20_000:  # a record every 0.2 ms or so
    name = f"child-{i}"
    journals.append(name, (name * (i % 50 + 1)).encode())
    i += 1
    time.sleep(0.0002)
print(i)
"""


def payload(name: str, i: int) -> bytes:
    """A payload of its own length for each record, so a record read short or long shows."""
    return (name * (i % 50 + 1)).encode()


def test_threads_append_and_look_at_once_while_another_process_appends(tmp_path: Path) -> None:
    """Eight threads of this process keep and look (none holds a lock across a system
    call) while a child process appends all along: every look finds a record whole or
    not at all, and afterwards every record is found whole."""
    folder = str(tmp_path / "workers")
    stop = tmp_path / "stop"
    journals = worker_journal.Journals(folder)
    child = subprocess.Popen(
        [sys.executable, "-c", APPEND_IN_A_CHILD, folder, str(stop)], stdout=subprocess.PIPE
    )
    while journals.find("child-0") is None and child.poll() is None:
        pass  # the child appends from here until told to stop
    wrong: list[str] = []

    def work(thread: int) -> None:
        for i in range(1000):
            name = f"t{thread}-{i}"
            journals.append(name, payload(name, i))
            if journals.find(name) != payload(name, i):
                wrong.append(f"own {name}")
            other = f"child-{i * 7}"
            found = journals.find(other)
            if found is not None and found != payload(other, i * 7):
                wrong.append(f"child's {other}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.touch()
    out, _ = child.communicate(timeout=120)
    assert child.returncode == 0
    assert wrong == []
    later = worker_journal.Journals(folder)  # another process's view, after all of it
    for look in (journals, later):
        children = [f"child-{i}" for i in range(int(out))]
        assert [n for i, n in enumerate(children) if look.find(n) != payload(n, i)] == []
        ours = [(f"t{t}-{i}", i) for t in range(8) for i in range(1000)]
        assert [n for n, i in ours if look.find(n) != payload(n, i)] == []
    journals.close()
    later.close()


def test_journals_closed_while_threads_append_and_look_lose_nothing(tmp_path: Path) -> None:
    """A standing worker closes an old run's journals while its threads may still use
    them: no thread reads or writes a closed file, the files are closed once, when the
    last user leaves, and what is kept after the close goes to a journal of its own."""
    folder = str(tmp_path / "catalog" / "r" / checkpoint.WORKERS)
    journals = worker_journal.Journals(folder)
    closed = threading.Event()
    kept: list[list[str]] = [[] for _ in range(8)]
    wrong: list[str] = []

    def work(thread: int) -> None:
        after_close = 0
        for i in itertools.count():
            name = f"t{thread}-{i}"
            try:
                journals.append(name, payload(name, i))
                kept[thread].append(name)
                if journals.find(name) != payload(name, i):
                    wrong.append(name)
            except Exception as exc:  # a closed file (OSError), a number given to another
                wrong.append(f"{name}: {exc!r}")
                return
            after_close += closed.is_set()
            if after_close > 100:
                return

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    while journals.find("t7-20") is None and all(t.is_alive() for t in threads):
        pass  # until every thread is at it (one that stopped on an error says so below)
    journals.close()
    closed.set()
    for t in threads:
        t.join()

    assert wrong == []
    later = worker_journal.Journals(folder)
    every = [name for names in kept for name in names]
    lost = [n for n in every if later.find(n) != payload(n, int(n.split("-")[1]))]
    assert lost == []
    assert len(list(Path(folder).glob("*.journal"))) == 2  # the closed one, and the next
    later.close()
    worker_journal.of(folder).close()  # the one that took the steps after the close
    assert open_files_in(tmp_path) == []  # each closed (twice would have raised)


def open_files_in(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open."""
    paths = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since listed
            paths.append(os.readlink(f"/proc/self/fd/{fd}"))
    return [p for p in paths if p.startswith(str(folder))]


def test_a_name_cut_short_in_the_list_hides_no_later_journal(tmp_path: Path) -> None:
    """A process killed while naming its journal leaves a line without its end: the
    next process's journal, named after it, is still found."""
    location = tmp_path / "catalog"
    folder = location / "r" / checkpoint.WORKERS
    folder.mkdir(parents=True)
    (folder / worker_journal.LIST).write_bytes(b"\n123-abc")
    keep_in_a_child(location, "a")
    assert checkpoint.FileCheckpoints(RunCatalog(str(location), "r")).load("a") is not None


def test_a_journal_kept_before_the_list_existed_is_found(tmp_path: Path) -> None:
    location = tmp_path / "catalog"
    keep_in_a_child(location, "a")
    [path] = journals(location)
    (path.parent / worker_journal.LIST).unlink()
    assert checkpoint.FileCheckpoints(RunCatalog(str(location), "r")).load("a") is not None


def test_threads_first_looking_at_once_at_long_journals_find_every_record(
    tmp_path: Path,
) -> None:
    """A resumed run's journals are long: eight threads whose first looks come at once
    (one reads each journal, the others wait for it) find every record whole."""
    location = tmp_path / "catalog"
    names = [f"s{i}" for i in range(3000)]
    keep_in_a_child(location, *names[:1500])
    keep_in_a_child(location, *names[1500:])
    files = checkpoint.FileCheckpoints(RunCatalog(str(location), "r"))
    missing: list[str] = []

    def look(thread: int) -> None:
        for name in names[thread::8]:
            kept = files.load(name)
            if kept is None or kept.event.internal_name != name:
                missing.append(name)

    threads = [threading.Thread(target=look, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert missing == []


CUT_SHORT_IN_A_CHILD = """
import resource, sys
from runnable_dask.runtime import worker_journal

journals = worker_journal.of(sys.argv[1])
journals.append("a", b"a" * 100)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))  # Python ignores SIGXFSZ
try:
    journals.append("b", b"b" * 2000)
except OSError as exc:
    print("cut:", exc)
journals.append("c", b"c" * 100)
"""


def test_a_write_cut_short_ends_its_journal(tmp_path: Path) -> None:
    """A write the system cuts short (here a file size limit; a full disk alike) fails
    the step's keeping, and the process's later records go to a new journal, where
    every other process reads them."""
    folder = tmp_path / "workers"
    done = subprocess.run(
        [sys.executable, "-c", CUT_SHORT_IN_A_CHILD, str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.startswith("cut: the journal's write was cut short")
    assert len(list(folder.glob("*.journal"))) == 2
    journals = worker_journal.Journals(str(folder))
    assert journals.find("a") == b"a" * 100
    assert journals.find("b") is None
    assert journals.find("c") == b"c" * 100
    journals.close()
