"""Experiment tracking: a small set of hooks a run calls, and the trackers that use them.

A tracker subclasses :class:`Tracker` and overrides the hooks it needs; each hook takes
keyword-only arguments (new ones may be added: accept ``**_``), and the defaults do
nothing. Hooks run in the driving process only (where the run log is written), in the
order things happen: ``run_started`` once, ``step_finished`` for each step as its record
arrives (map iterations and branches included), ``run_finished`` once, whatever happened.
An error in a hook never fails the run: it is printed and kept in the run log's
``run_config["tracking_errors"]``.

Trackers are named in the configuration's ``tracking`` section and found through the
entry-point group ``runnable_dask.trackers`` (the built-in ``mlflow`` is registered the
same way), or given as ``package.module:Class``::

    tracking:
      - type: mlflow
        config: {tracking_uri: "sqlite:///mlflow.db", experiment_name: sweeps}
"""

from __future__ import annotations

from typing import Any


class Tracker:
    """The hooks a run calls; override what you need, keep ``**_`` for new fields.

    Example:
        >>> class Printer(Tracker):
        ...     def step_finished(self, *, internal_name, status, metrics, **_):
        ...         print(internal_name, status, metrics)
    """

    def run_started(
        self,
        *,
        run_id: str,
        tag: str,
        parameters: dict[str, Any],
        dag_hash: str,
        resumed: bool,
        catalog: str,
        run_log_path: str,
        **_: Any,
    ) -> None:
        """Before any step runs.

        Args:
            run_id: the run's id.
            tag: the run's tag ("" when none was given).
            parameters: the initial parameters, name -> value (pickled ones left out).
            dag_hash: the hash of the pipeline's definition.
            resumed: whether this run resumes a failed one of the same id.
            catalog: where the run's catalog folder is (a path or URL).
            run_log_path: where the run log is written.
        """

    def step_finished(
        self,
        *,
        run_id: str,
        internal_name: str,
        name: str,
        step_type: str,
        status: str,
        message: str,
        metrics: dict[str, Any],
        inputs: dict[str, Any],
        described: dict[str, Any],
        outputs: dict[str, Any],
        attempts: int,
        start_time: str,
        end_time: str,
        branches: tuple[str, ...],
        **_: Any,
    ) -> None:
        """A step's record is final (a task after its last attempt, a composite after its
        branches).

        Args:
            run_id: the run's id.
            internal_name: the step's name in the run log (``sweep.0.1.train``).
            name: the step's own name (``train``).
            step_type: ``task``, ``stub``, ``parallel``, ``map``, ``conditional``, ``loop``.
            status: ``SUCCESS`` or ``FAIL``.
            message: why it failed ("" on success).
            metrics: what the last attempt returned as ``metric(...)``, name -> value.
            inputs: the last attempt's input parameters, name -> value (json and metric
                kinds; pickled ones left out).
            described: the pickled input parameters that are dataclasses, pydantic models
                or named tuples (a map's item, often), name -> their fields as a dict.
            outputs: the parameters the last attempt returned, name -> value (likewise).
            attempts: how many attempts the step took (0 for composites).
            start_time, end_time: ISO times of the first attempt's start and last's end.
            branches: the internal names of the branches it runs in, outermost first
                (``("sweep.random_forest", "sweep.random_forest.grid.max_depth=4")``); ()
                at the top of the pipeline.
        """

    def run_finished(
        self,
        *,
        run_id: str,
        status: str,
        parameters: dict[str, Any],
        run_log: Any,
        catalog: Any,
        **_: Any,
    ) -> None:
        """The run ended, well or not; the run log is written.

        Args:
            run_id: the run's id.
            status: ``SUCCESS`` or ``FAIL``.
            parameters: the final parameters, name -> value.
            run_log: the whole :class:`~runnable_dask.stores.runlog.RunLog`.
            catalog: the run's :class:`~runnable_dask.stores.catalog.RunCatalog`
                (``list_files("")``, ``read_bytes(path)``).
        """


__all__ = ["Tracker"]
