"""Names with control characters are refused when built (issue 17, point 9): a newline in a
step name broke the console's line, and would break log file names and internal names."""

from __future__ import annotations

import re

import pytest

from runnable_dask import Parallel, Pipeline, PipelineDefinitionError, PythonTask, Stub


def noop() -> None:
    return None


@pytest.mark.parametrize(
    ("name", "shown", "suggestion"),
    [
        ("train\nmodel", r"'\\n'", "train model"),
        ("a\tb", r"'\\t'", "a b"),
        ("red\x1b[31m", r"'\\x1b'", "red [31m"),
        ("one\u2028two", r"'\\u2028'", "one two"),
    ],
)
def test_a_step_name_with_a_control_character_is_refused(
    name: str, shown: str, suggestion: str
) -> None:
    with pytest.raises(
        PipelineDefinitionError,
        match=rf"PythonTask .*: name: step name .* "
        rf"contains {shown}, which would break the console's lines, the run "
        rf"log's names and file names; use printable characters, e.g. "
        rf"'{re.escape(suggestion)}'",
    ) as caught:
        PythonTask(name=name, function=noop)
    assert len(caught.value.problems) == 1


def test_a_branch_name_with_a_newline_is_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match=r"Parallel 'fan': branches: branch name"):
        Parallel(name="fan", branches={"a\nb": Pipeline(steps=[Stub(name="s")])})


def test_printable_names_are_kept_as_written() -> None:
    assert Stub(name="train model (ünïcode, 2 spaces  ok)").name.endswith("ok)")
