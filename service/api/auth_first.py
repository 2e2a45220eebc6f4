"""Authenticate before FastAPI parses a JSON body.

FastAPI reads and decodes a route's JSON body before it runs any dependency, so a client
without a token that sends malformed JSON would learn "422 JSON decode error" instead of
401, and its failed attempt would never reach the failed-authentication budget. Routers
that take JSON bodies use `AuthFirstRoute`: for routes that need a token, the token is
checked first (the same check as the `CurrentToken` dependency, which then reuses it).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant

from service.api.deps import authenticate, current_token
from service.api.session_route import SessionReleasingRoute

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _needs_token(dependant: Dependant) -> bool:
    return any(dep.call is current_token or _needs_token(dep) for dep in dependant.dependencies)


class AuthFirstRoute(SessionReleasingRoute):
    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        if self.body_field is None or not _needs_token(self.dependant):
            return handler

        async def authenticated(request: Request) -> Response:
            await anyio.to_thread.run_sync(authenticate, request)
            return await handler(request)

        return authenticated
