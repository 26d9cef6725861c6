"""What runs inside a Dask task: pure functions of their inputs that report small records.

Nothing here writes the run log: each task reports events (a step started, an attempt
ended, a branch ended) through the run's reporter to the driving process.
"""
