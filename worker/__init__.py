"""EdgePrune's Celery worker: thin tasks that load a job, run `pruning`, and report.

Imports `pruning` and the persistence side of `service` (store, storage, settings, queue),
never the API (checked by import-linter).
"""
