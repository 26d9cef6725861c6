"""Catalog patterns that would leave the working folder or the run's catalog are refused
when the task is built, naming the task, the pattern and the fix (issue 17, point 1)."""

from __future__ import annotations

import pytest

from runnable_dask import Catalog, NotebookTask, PipelineDefinitionError, PythonTask, ShellTask


def noop() -> None:
    return None


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: ShellTask(
                name="copy", command="true", catalog=Catalog(put=["../../victim.txt"])
            ),
            r"ShellTask 'copy': catalog put pattern '\.\./\.\./victim\.txt' has a '\.\.' "
            r"segment, so it would reach outside the working folder or the run's catalog; "
            r"name the file relative to both \(e\.g\. 'victim\.txt'\)",
        ),
        (
            lambda: PythonTask(
                name="steal", function=noop, catalog=Catalog(get=["../other_run/logs/*"])
            ),
            r"PythonTask 'steal': catalog get pattern '\.\./other_run/logs/\*' has a '\.\.' "
            r"segment.*\(e\.g\. 'other_run/logs/\*'\)",
        ),
        (
            lambda: NotebookTask(
                name="nb", notebook="a.ipynb", catalog=Catalog(put=["/etc/passwd"])
            ),
            r"NotebookTask 'nb': catalog put pattern '/etc/passwd' is an absolute path",
        ),
        (
            lambda: ShellTask(name="deep", command="true", catalog=Catalog(put=["out/../../x"])),
            r"ShellTask 'deep': catalog put pattern 'out/\.\./\.\./x' has a '\.\.' segment",
        ),
    ],
)
def test_a_pattern_that_leaves_the_folders_is_refused_when_built(build, expected: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=expected):
        build()


def test_every_bad_pattern_of_a_task_is_listed_at_once() -> None:
    with pytest.raises(PipelineDefinitionError) as caught:
        ShellTask(
            name="both",
            command="true",
            catalog=Catalog(get=["~/.ssh/id_rsa"], put=["../up3.txt"]),
        )
    assert len(caught.value.problems) == 2
    assert all(p.startswith("ShellTask 'both': catalog") for p in caught.value.problems)


def test_patterns_inside_the_folders_are_accepted() -> None:
    task = ShellTask(
        name="fine", command="true", catalog=Catalog(get=["data/*.csv"], put=["out/./a..b.txt"])
    )
    assert task.catalog is not None
