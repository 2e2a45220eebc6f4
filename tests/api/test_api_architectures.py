"""GET /v1/architectures and the upload's arch check, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.store import architectures
from infra.store.architectures import ZOO_ARCHITECTURES
from tests.api.api_helpers import Api, running_api
from tests.api.test_api_models import torch_like_zip, upload


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def any_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    with running_api(tmp_path, request.param, "edgeprune_arch_test") as api:
        yield api


def _names(api: Api) -> list[tuple[str, str]]:
    body = api.client.get("/v1/architectures", headers=api.admin).json()
    assert body["count"] == len(body["data"])
    return [(a["name"], a["source"]) for a in body["data"]]


def test_the_zoo_is_known_before_any_worker_reports(any_api: Api) -> None:
    assert _names(any_api) == [(name, "zoo") for name in sorted(ZOO_ARCHITECTURES)]
    assert any_api.client.get("/v1/architectures").status_code == 401


def test_reported_architectures_are_listed_and_accepted(any_api: Api) -> None:
    refused = upload(any_api, "m.pt", torch_like_zip(), arch="camera_net")
    assert refused.status_code == 422
    problem = refused.json()
    assert "unknown arch 'camera_net'; known: " in problem["detail"]
    assert "vgg11" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "arch"]

    with any_api.sessions.begin() as session:
        architectures.report(session, [("vgg11", "zoo"), ("camera_net", "installed")], "gpu@a")
    with any_api.sessions.begin() as session:  # a second report updates, never duplicates
        architectures.report(session, [("camera_net", "installed")], "gpu@b")
    listed = any_api.client.get("/v1/architectures", headers=any_api.admin).json()["data"]
    camera = [a for a in listed if a["name"] == "camera_net"]
    assert len(camera) == 1 and camera[0]["reported_by"] == "gpu@b"
    assert camera[0]["reported_at"] is not None
    assert listed[-1]["name"] == "camera_net"  # installed ones after the zoo
    accepted = upload(any_api, "m.pt", torch_like_zip(), arch="camera_net")
    assert accepted.status_code == 202, accepted.text  # no worker here: left pending
