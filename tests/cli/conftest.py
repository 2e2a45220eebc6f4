"""The real API served by uvicorn on a loopback port, for the CLI's HTTP commands."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import get_settings
from tests.api.api_helpers import make_settings
from tests.support.live_server import LiveServer
from tests.support.live_server import live_server as serve_live


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    # The CLI reads only what we give it: no token or server from the developer's shell.
    for name in ("EDGEPRUNE_TOKEN", "EDGEPRUNE_SERVER", "EDGEPRUNE_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        with serve_live(make_settings(tmp_path), "cli tests") as server:
            yield server
    finally:
        get_settings.cache_clear()
