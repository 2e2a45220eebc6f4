"""The handle on a live API server that the CLI tests talk to."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from service.settings import Settings
from service.storage import ArtifactStore


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
