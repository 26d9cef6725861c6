"""The user's own modules reach a scheduler and workers that cannot import them."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import pytest

from runnable_dask.executors.cluster import ship_graph, ship_user_modules

from .conftest import DaskProcesses

pytestmark = pytest.mark.cluster

WORDS = """
import os


class Loud:
    def __init__(self, word):
        self.word = word


def shout(loud):
    return loud.word.upper() + "!", os.getcwd()
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's project folder with a package ``mylib_words`` importable only here."""
    (tmp_path / "mylib_words").mkdir()
    (tmp_path / "mylib_words" / "__init__.py").write_text(WORDS, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    if "mylib_words" in cloudpickle.list_registry_pickle_by_value():
        cloudpickle.unregister_pickle_by_value(sys.modules["mylib_words"])
    sys.modules.pop("mylib_words", None)


def test_user_module_runs_on_workers_in_another_folder(
    tcp_cluster: DaskProcesses, project: Path
) -> None:
    words = importlib.import_module("mylib_words")
    graph = {"shout-1": (words.shout, words.Loud("hello"))}

    with tcp_cluster.client() as client:
        with pytest.raises(Exception, match="deserializ"):  # the scheduler cannot import it
            client.get(graph, "shout-1")
        shipped = ship_user_modules([words.shout], root=str(project))
        # a key of its own: the failed one's future may still be held (by the traceback
        # pytest keeps) and would hand back its error
        graph = {"shout-2": graph["shout-1"]}
        result, folder = client.get(ship_graph(graph), "shout-2")

    assert shipped == ["mylib_words"]
    assert result == "HELLO!"
    assert folder == str(tcp_cluster.worker_folder)


def test_installed_and_main_modules_are_not_shipped(project: Path) -> None:
    import yaml

    assert ship_user_modules([yaml.safe_load, print], root=str(project)) == []


def test_graph_unchanged_when_nothing_is_shipped() -> None:
    graph = {"a-1": (len, "b-2"), "b-2": (list, [1])}
    if not cloudpickle.list_registry_pickle_by_value():
        assert ship_graph(graph) is graph
