"""Fixtures for the edge client tests (helpers and the test server: edge_test_server.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.edge_client.edge_test_server import (
    EdgeTestServer,
    TinyModels,
    export_tiny_models,
    start_server,
)
from tests.support import net


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> TinyModels:
    return export_tiny_models(tmp_path_factory.mktemp("onnx"))


@pytest.fixture
def edge_server() -> Iterator[EdgeTestServer]:
    state, httpd, thread = start_server()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return net.free_port()
