"""Counting a task's inputs: it is ready once, when the last of them arrives."""

from __future__ import annotations

from runnable_dask.pending import PendingInputs


def test_a_task_is_ready_when_its_last_missing_input_arrives() -> None:
    pending = PendingInputs()
    assert pending.wait("join", ["a", "b"]) is False
    assert pending.arrived("a") == []
    assert pending.arrived("b") == ["join"]
    assert pending.arrived("b") == []  # said once


def test_a_task_with_nothing_missing_is_ready_at_once() -> None:
    assert PendingInputs().wait("first", []) is True


def test_an_input_read_twice_counts_twice_and_frees_every_reader() -> None:
    pending = PendingInputs()
    pending.wait("pair", ["x", "x"])
    pending.wait("other", ["x"])
    assert pending.arrived("x") == ["pair", "other"]
