"""Routes that give their database connection back before the response is serialised.

FastAPI closes a route's dependencies (even `scope="function"` ones) only after it has
validated and serialised the return value, which for a sync route is one more hop through
the thread pool. A session still inside a transaction keeps its pooled connection over that
hop; under a burst, every worker thread can end up waiting for a connection that only a
queued serialisation would give back, and the API hangs until the pool times out (measured
with 60+ concurrent requests). Closing the request's session as the endpoint returns, in
the endpoint's own thread, removes that wait. The returned rows stay readable (sessions do
not expire on commit, and the tables have no lazy relationships).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from fastapi.routing import APIRoute

from service.api.deps import close_request_session


def _closing_session(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            close_request_session()

    return run


class SessionReleasingRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _closing_session(endpoint)
        super().__init__(path, endpoint, **kwargs)
