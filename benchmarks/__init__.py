"""Benchmarks: runnable_dask against the same graphs on bare Dask (``python benchmarks/bench.py``).

A package so that the regression guard (``tests/test_benchmark_guard.py``) imports the very
workloads the benchmark times.
"""
