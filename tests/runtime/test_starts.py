"""Start events: sent once for a step still running after DELAY, never for a quick one,
and always before the step's end returns (the end's events cannot overtake it)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from runnable_dask.runtime.events import StepStarted
from runnable_dask.runtime.starts import DELAY, announced


def _start(name: str) -> StepStarted:
    return StepStarted(name, name, (), name, "task", "2026-01-01 00:00:00.000000")


class Sink:
    """Collects what is sent, from whichever thread sends it."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, events: list[Any]) -> None:
        with self._lock:
            self.sent.extend(e.internal_name for e in events)


def test_quick_steps_on_many_threads_send_no_start_and_a_slow_one_sends_one() -> None:
    sink = Sink()

    def step(i: int) -> None:
        with announced(sink, _start(f"quick{i}")):
            pass

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(step, range(2000)))
    with announced(sink, _start("slow")):
        time.sleep(3 * DELAY)
        assert sink.sent == ["slow"]  # sent while the step runs
    assert sink.sent == ["slow"]


def test_a_start_after_a_quiet_spell_is_still_sent_before_its_step_ends() -> None:
    sink = Sink()
    time.sleep(3 * DELAY)  # the announcing thread has gone quiet
    for name in ("first", "second"):
        with announced(sink, _start(name)):
            time.sleep(2 * DELAY)
        time.sleep(3 * DELAY)
    assert sink.sent == ["first", "second"]


def test_a_step_ending_while_its_start_is_sent_waits_for_it() -> None:
    sink = Sink()
    sending = threading.Event()

    def slow_send(events: list[Any]) -> None:
        sending.set()
        time.sleep(DELAY)  # still sending when the step ends
        sink(events)

    with announced(slow_send, _start("step")):
        sending.wait()
    assert sink.sent == ["step"]  # the end returned only once the start was sent
