"""Run a ``ShellTask`` in bash: parameters in, exported names out, output to the log.

Only the names the task returns are read back, by an ``EXIT`` trap that writes them to a
private file; nothing the command did not print itself reaches its log.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import TextIO

from runnable_dask.runtime.binding import to_param
from runnable_dask.runtime.deadline import run_killable
from runnable_dask.runtime.tokens import Param
from runnable_dask.sdk import ShellTask

_RETURNS_FILE = "RUNNABLE_DASK_RETURNS_FILE"
_TRAP = (
    "__rd_collect() {\n"
    "  __rd_status=$?\n"
    "  for __rd_name in %s; do\n"
    '    if declare -p "$__rd_name" >/dev/null 2>&1; then\n'
    '      printf \'%%s\\0%%s\\0\' "$__rd_name" "${!__rd_name}"\n'
    "    fi\n"
    '  done > "$%s"\n'
    "  exit $__rd_status\n"
    "}\n"
    "trap __rd_collect EXIT\n"
)


class ShellCommandError(Exception):
    """The command exited with a non-zero status."""


def run_shell(task: ShellTask, params: dict[str, Param], log: TextIO) -> dict[str, Param]:
    """Run the command; fail on a non-zero exit or a declared return it did not set."""
    env = dict(os.environ)
    for name, param in params.items():
        if param.kind != "object":
            value = param.value
            env[name] = value if isinstance(value, str) else json.dumps(value)
    names = " ".join(r.name for r in task.returns)
    with tempfile.TemporaryDirectory(prefix="runnable-dask-") as scratch:
        returns_file = os.path.join(scratch, "returns")
        env[_RETURNS_FILE] = returns_file
        script = (_TRAP % (names, _RETURNS_FILE) if names else "") + task.command
        completed = run_killable(["bash", "-c", script], env=env, partial_output=log)
        log.write(completed.stdout)
        if completed.returncode != 0:
            tail = completed.stdout.strip().splitlines()[-3:]
            detail = f"; last output: {' | '.join(tail)}" if tail else ""
            raise ShellCommandError(f"command exited with status {completed.returncode}{detail}")
        exported = _read_returns(returns_file) if names else {}
    missing = [r.name for r in task.returns if r.name not in exported]
    if missing:
        raise ShellCommandError(
            f"the command did not set {missing}; set and export them, e.g. "
            f"export {missing[0]}=value"
        )
    return {r.name: to_param(r, _decode(exported[r.name])) for r in task.returns}


def _read_returns(path: str) -> dict[str, str]:
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        fields = handle.read().split("\0")
    return dict(zip(fields[0::2], fields[1::2], strict=False))


def _decode(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text
