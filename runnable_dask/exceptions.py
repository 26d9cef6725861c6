"""Every error runnable_dask raises on purpose derives from :class:`RunnableDaskError`."""

from __future__ import annotations


class RunnableDaskError(Exception):
    """Base class: catch this to handle any error runnable_dask raises on purpose."""


class PipelineDefinitionError(RunnableDaskError, ValueError):
    """A pipeline or step was defined wrongly; raised when it is built, never mid-run.

    ``problems`` holds one line per problem found, so a user fixes them all at once.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"Invalid pipeline definition:\n{lines}")


class ConfigurationError(RunnableDaskError, ValueError):
    """The configuration file, parameters file or environment holds a value we cannot use."""


class RunLogExistsError(RunnableDaskError):
    """A run log with the requested run id exists already; runs never overwrite one."""


class RunLogStoreError(RunnableDaskError):
    """The run-log store cannot be written: refused before any step runs, or the run is
    stopped when a write fails mid-run (the message says where the last good log is)."""


class ExecutionFailedError(RunnableDaskError):
    """The pipeline ran and ended in FAIL; the run log says which step failed and why.

    The message names the first :attr:`NAMED` failures (a sweep whose thousand branches
    all failed the same way gave a message of a hundred kilobytes); ``failures`` holds
    every one.
    """

    NAMED = 5

    def __init__(self, run_id: str, failures: list[tuple[str, str]], run_log_path: str) -> None:
        self.run_id = run_id
        self.failures = failures
        self.run_log_path = run_log_path
        named = [f"{name}: {message}" for name, message in failures[: self.NAMED]]
        if len(failures) > self.NAMED:
            named.append(f"and {len(failures) - self.NAMED} more steps")
        detail = "; ".join(named) or "see the run log"
        super().__init__(f"Run {run_id!r} failed ({detail}). Run log: {run_log_path}")


class RunInUseError(RunnableDaskError):
    """Another live driver holds the run id: one driver per run, resumes included."""
