"""The real API served by uvicorn in a thread on a loopback port, with an admin token."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from infra.settings import Settings
from infra.storage import ArtifactStore
from infra.store.tokens import create_token
from service.api.main import create_app
from tests.support.net import free_port


@dataclass
class LiveServer:
    url: str
    app: FastAPI
    settings: Settings
    admin_token: str

    @property
    def sessions(self) -> sessionmaker[Session]:
        factory: sessionmaker[Session] = self.app.state.sessions
        return factory

    @property
    def storage(self) -> ArtifactStore:
        store: ArtifactStore = self.app.state.storage
        return store


@contextmanager
def live_server(settings: Settings, token_name: str = "tests") -> Iterator[LiveServer]:
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    with app.state.sessions() as session:
        _, secret = create_token(session, token_name, kind="admin")
        session.commit()
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, settings, secret)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
