"""An executor's notes reach the person watching once, in order, after the run's first
lines, whether said while it connected or while the run goes on."""

from __future__ import annotations

from runnable_dask.executors import Notices


def test_notes_said_before_anyone_listens_are_held_then_said_in_order() -> None:
    notices = Notices()
    notices("note the cluster recorded is gone")
    heard: list[str] = []
    notices.listen(heard.append)
    notices("note resources are ignored")
    assert heard == ["note the cluster recorded is gone", "note resources are ignored"]


def test_held_notes_are_said_only_once() -> None:
    notices = Notices()
    notices("note once")
    first: list[str] = []
    second: list[str] = []
    notices.listen(first.append)
    notices.listen(second.append)
    assert (first, second) == (["note once"], [])
