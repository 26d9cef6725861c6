"""The driver freezes the heap while a run goes (collections skip what was alive before)
and leaves it as it found it: garbage made before a run is still collected after it."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from runnable_dask import Pipeline, PythonTask, json
from runnable_dask.frozen_heap import collections_paused
from tests.conftest import Run


class Node:
    """An object that can be in a cycle and be watched through a weak reference."""

    other: Node | None = None


def freeze_count() -> int:
    return gc.get_freeze_count()


@pytest.fixture
def thawed() -> Iterator[None]:
    gc.unfreeze()  # whatever an earlier test or handler left frozen
    yield
    gc.unfreeze()


def test_a_run_freezes_the_heap_while_it_goes_and_thaws_it_after(run: Run, thawed: None) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only a collection frees it
    watched = weakref.ref(a)
    del a, b

    run_log = run(
        Pipeline(steps=[PythonTask(name="look", function=freeze_count, returns=[json("n")])])
    )

    assert run_log.parameters["n"].value > 0, "the step ran with the heap unfrozen"
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert watched() is None, "a cycle made before the run outlived it"


def test_a_heap_the_program_froze_stays_frozen(run: Run, thawed: None) -> None:
    gc.freeze()

    run(Pipeline(steps=[PythonTask(name="look", function=freeze_count, returns=[json("n")])]))

    assert gc.get_freeze_count() > 0, "the run thawed a heap it had not frozen"


def test_collections_pause_for_a_block_and_resume_only_if_they_ran_before() -> None:
    assert gc.isenabled()
    with collections_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # the program turned them off itself: left off
    try:
        with collections_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
