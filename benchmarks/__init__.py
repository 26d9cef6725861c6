"""Benchmarks: runnable_dask against the same graphs on bare Dask (``python benchmarks/bench.py``).

A package so that the ratio guard (``python -m pytest benchmarks``) imports the very
workloads the benchmark times.
"""
