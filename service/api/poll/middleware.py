"""The outermost ASGI layer: manifest polls go to the app's `PollPath` before anything else.

Everything else, and every poll the poll path leaves alone, goes down the regular stack
(metrics, size limits, routing, dependencies) unchanged. The poll path lives in
`app.state.poll_path`, made by the lifespan; before it exists the middleware only forwards.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.poll.path import PollPath

PREFIX = "/v1/deployments/"
SUFFIX = "/manifest"


class PollFastPathMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(PREFIX) and path.endswith(SUFFIX):
                name = path[len(PREFIX) : -len(SUFFIX)]
                poll: PollPath | None = getattr(scope["app"].state, "poll_path", None)
                answerable = name and "/" not in name and poll is not None
                if answerable and poll is not None and await poll.answer(scope, name, send):
                    return
        await self.app(scope, receive, send)
