"""Where a run's records live: the run log (driver only) and the catalog (tasks)."""
