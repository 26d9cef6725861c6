"""Fixtures of the ratio guard (``python -m pytest benchmarks``), which the default test
run leaves out: timing ratios with tight limits fail on a busy machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh folder the benchmark runs in, with no RUNNABLE_* variable inherited."""
    for name in list(os.environ):
        if name.startswith("RUNNABLE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path
