"""Tell the API which architectures this worker can build (the zoo and installed
`edgeprune.models` entry points), once at start."""

from __future__ import annotations

import logging

from infra.settings import Settings
from infra.store import architectures
from infra.store.db import make_engine, make_session_factory

log = logging.getLogger("edgeprune.worker")


def report_architectures(settings: Settings, worker: str) -> list[tuple[str, str]]:
    """Write what this process can build to the job store. Runs in the parent before the
    pool forks: the engine is disposed afterwards, so no connection crosses a fork."""
    from pruning.models.registry import buildable_architectures

    found = buildable_architectures()
    engine = make_engine(settings.resolved_database_url())
    try:
        with make_session_factory(engine).begin() as session:
            architectures.report(session, found, worker)
    finally:
        engine.dispose()
    installed = [name for name, source in found if source == "installed"]
    log.info("architectures: the zoo and %s", ", ".join(installed) or "nothing installed")
    return found
