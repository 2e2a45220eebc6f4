"""The `edgeprune` command: composes the CLIs of the rooms (service, worker, pruning).

This tiny package is the composition root, the one place allowed to see every room. Each
room's `register(app)` adds its commands; heavy imports (torch, FastAPI, Celery) happen inside
the commands, so `edgeprune api` never loads torch.
"""
