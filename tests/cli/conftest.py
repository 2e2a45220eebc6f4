"""The real API served by uvicorn on a loopback port, for the CLI's HTTP commands."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from service.api.main import create_app
from service.settings import get_settings
from service.store.tokens import create_token
from tests.api.api_helpers import make_settings
from tests.cli.live_server import LiveServer
from tests.support.net import free_port


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    with app.state.sessions() as session:
        _, secret = create_token(session, "cli tests", kind="admin")
        session.commit()
    # The CLI reads only what we give it: no token or server from the developer's shell.
    for name in ("EDGEPRUNE_TOKEN", "EDGEPRUNE_SERVER", "EDGEPRUNE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, settings, secret)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        get_settings.cache_clear()
