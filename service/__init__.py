"""EdgePrune's API side: REST API, dashboard, job store, artifact storage, queue client, CLI.

Never imports torch, `pruning` or `worker` (checked by import-linter), so the API image
starts fast and small.
"""
