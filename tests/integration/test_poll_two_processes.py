"""The poll path's caches across API processes that share one database (issue 15).

Two uvicorn processes serve the same store. Devices poll process A until its caches hold
their identities and manifests; every change then goes through process B, and the very next
poll on A must already answer with it: a staged promotion, a widening, a rollback and a
revoked device. Run on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.live_service import API_APP, Backend, ServerProcess, local_backend
from bench.seed import Seeder, add_succeeded_job
from infra.store.deployments import rollout_bucket
from tests.conftest import create_pg_database, drop_pg_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEPLOYMENT = "cams"


@dataclass(frozen=True)
class Device:
    id: str
    auth: dict[str, str]

    def staged(self, percent: int) -> bool:
        return rollout_bucket(self.id) < percent


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        yield local_backend(tmp_path)
        return
    url = create_pg_database("edgeprune_poll_test")
    try:
        yield local_backend(tmp_path, database_url=url)
    finally:
        drop_pg_database(url)


def _register(client: httpx.Client, admin: dict[str, str], n: int) -> list[Device]:
    devices = []
    for i in range(n):
        body = {"name": f"cam-{i}", "deployment": DEPLOYMENT}
        created = client.post("/v1/devices", json=body, headers=admin)
        assert created.status_code == 201, created.text
        data = created.json()
        devices.append(Device(data["id"], {"Authorization": f"Bearer {data['token']}"}))
    return devices


def _versions(client: httpx.Client, devices: list[Device]) -> dict[str, int]:
    seen = {}
    for device in devices:
        response = client.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=device.auth)
        assert response.status_code == 200, response.text
        seen[device.id] = response.json()["version"]
    return seen


def test_a_change_through_one_api_process_reaches_the_next_poll_on_another(
    backend: Backend, tmp_path: Path
) -> None:
    env = backend.env()
    # A migrates the database before B starts and before the seeder opens it.
    with ServerProcess(API_APP, env, log_path=tmp_path / "a.log") as a:
        seeder = Seeder(backend.database_url, backend.artifacts_url)
        try:
            with ServerProcess(API_APP, env, log_path=tmp_path / "b.log") as b:
                _exercise(a, b, seeder)
        finally:
            seeder.close()


def _exercise(a: ServerProcess, b: ServerProcess, seeder: Seeder) -> None:
    admin = {"Authorization": f"Bearer {seeder.admin_token()}"}
    first = seeder.publish(DEPLOYMENT, os.urandom(1024), os.urandom(2048))
    second = add_succeeded_job(
        seeder.sessions, seeder.storage, seeder.job_inputs(), os.urandom(1024), os.urandom(2048)
    )
    with httpx.Client(base_url=a.url) as on_a, httpx.Client(base_url=b.url) as on_b:
        devices = _register(on_b, admin, 16)
        assert {d.staged(50) for d in devices} == {True, False}, "buckets on both sides"
        for _ in range(3):  # A's caches now hold every identity and both buckets' manifests
            assert set(_versions(on_a, devices).values()) == {first.version}
        etag = on_a.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=devices[0].auth)
        conditional = {**devices[0].auth, "If-None-Match": etag.headers["etag"]}
        polled = on_a.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=conditional)
        assert polled.status_code == 304

        staged = on_b.put(
            f"/v1/deployments/{DEPLOYMENT}",
            json={"job_id": second.job_id, "percent": 50},
            headers=admin,
        )
        assert staged.status_code == 200, staged.text
        new = staged.json()["rollout"]["version"]
        assert _versions(on_a, devices) == {
            d.id: new if d.staged(50) else first.version for d in devices
        }

        widened = on_b.post(f"/v1/deployments/{DEPLOYMENT}/widen", json={}, headers=admin)
        assert widened.status_code == 200, widened.text
        assert set(_versions(on_a, devices).values()) == {new}
        polled = on_a.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=conditional)
        assert polled.status_code == 200 and polled.json()["sha256"] == second.model_sha256

        rolled = on_b.post(f"/v1/deployments/{DEPLOYMENT}/rollback", headers=admin)
        assert rolled.status_code == 200, rolled.text
        assert set(_versions(on_a, devices).values()) == {first.version}
        assert (
            on_a.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=conditional).status_code
            == 304
        )

        revoked, kept = devices[0], devices[1:]
        assert on_b.post(f"/v1/devices/{revoked.id}/revoke", headers=admin).status_code == 200
        refused = on_a.get(f"/v1/deployments/{DEPLOYMENT}/manifest", headers=revoked.auth)
        assert refused.status_code == 401
        assert set(_versions(on_a, kept).values()) == {first.version}
