"""/v1/deployments: promote, history, rollback, and the manifest with ETag/304."""

from __future__ import annotations

from tests.api.api_helpers import Api, finish_job, submit_job

PROBLEM = "application/problem+json"


def succeeded_job(api: Api, onnx: bytes = b"onnx" * 100) -> tuple[str, dict[str, str]]:
    job = submit_job(api)
    return job["id"], finish_job(api, job["id"], onnx=onnx)


def test_promote_creates_then_versions_a_deployment(api: Api) -> None:
    first, _ = succeeded_job(api, b"one" * 50)
    second, _ = succeeded_job(api, b"two" * 50)
    created = api.client.put("/v1/deployments/cams", json={"job_id": first}, headers=api.admin)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/deployments/cams"
    assert created.json()["current_version"] == 1
    assert created.json()["current_job_id"] == first

    updated = api.client.put("/v1/deployments/cams", json={"job_id": second}, headers=api.admin)
    assert updated.status_code == 200
    body = updated.json()
    assert body["current_version"] == 2 and body["current_job_id"] == second
    assert [(v["version"], v["job_id"]) for v in body["history"]] == [(2, second), (1, first)]

    shown = api.client.get("/v1/deployments/cams", headers=api.admin).json()
    assert shown == body
    listing = api.client.get("/v1/deployments", headers=api.admin).json()
    assert listing["count"] == 1 and listing["data"][0]["name"] == "cams"


def test_promote_refuses_jobs_that_did_not_succeed(api: Api) -> None:
    job = submit_job(api)
    response = api.client.put("/v1/deployments/cams", json={"job_id": job["id"]}, headers=api.admin)
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"] == "urn:edgeprune:problem:job-not-succeeded"


def test_promote_errors(api: Api) -> None:
    unknown = api.client.put("/v1/deployments/cams", json={"job_id": "job_x"}, headers=api.admin)
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "job_id"]
    bad_name = api.client.put("/v1/deployments/Bad!", json={"job_id": "x"}, headers=api.admin)
    assert bad_name.status_code == 422
    assert bad_name.json()["errors"][0]["loc"] == ["path", "name"]
    missing_body = api.client.put("/v1/deployments/cams", json={}, headers=api.admin)
    assert missing_body.status_code == 422
    assert missing_body.json()["errors"][0]["loc"] == ["body", "job_id"]


def test_rollback_repoints_and_keeps_history(api: Api) -> None:
    first, _ = succeeded_job(api, b"one" * 50)
    second, _ = succeeded_job(api, b"two" * 50)
    for job_id in (first, second):
        api.client.put("/v1/deployments/cams", json={"job_id": job_id}, headers=api.admin)
    response = api.client.post("/v1/deployments/cams/rollback", headers=api.admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["current_version"] == 1 and body["current_job_id"] == first
    assert len(body["history"]) == 2
    # Nothing before version 1.
    again = api.client.post("/v1/deployments/cams/rollback", headers=api.admin)
    assert again.status_code == 409
    # An explicit version works both ways.
    forward = api.client.post(
        "/v1/deployments/cams/rollback", json={"version": 2}, headers=api.admin
    )
    assert forward.json()["current_version"] == 2
    nope = api.client.post("/v1/deployments/cams/rollback", json={"version": 9}, headers=api.admin)
    assert nope.status_code == 422


def test_unknown_deployment_is_404(api: Api) -> None:
    for method, path in (
        ("GET", "/v1/deployments/ghost"),
        ("GET", "/v1/deployments/ghost/manifest"),
        ("POST", "/v1/deployments/ghost/rollback"),
    ):
        response = api.client.request(method, path, headers=api.admin)
        assert response.status_code == 404, path
        assert response.json()["type"] == "urn:edgeprune:problem:deployment-not-found"


def test_manifest_describes_the_current_model(api: Api) -> None:
    job_id, digests = succeeded_job(api, b"model-bytes" * 10)
    api.client.put("/v1/deployments/cams", json={"job_id": job_id}, headers=api.admin)
    response = api.client.get("/v1/deployments/cams/manifest", headers=api.admin)
    assert response.status_code == 200
    sha = digests["model.onnx"]
    assert response.json() == {
        "deployment": "cams",
        "version": 1,
        "job_id": job_id,
        "sha256": sha,
        "size": len(b"model-bytes" * 10),
        "url": f"http://testserver/v1/artifacts/{sha}",
        "baseline_url": f"http://testserver/v1/artifacts/{digests['baseline.onnx']}",
        "baseline_sha256": digests["baseline.onnx"],
        "input_shape": [1, 8, 8],
        "classes": ["0", "1"],
        "flops": 2500,
        "params": 600,
        "variants": [
            {
                "name": "fp32",
                "sha256": sha,
                "size": len(b"model-bytes" * 10),
                "url": f"http://testserver/v1/artifacts/{sha}",
                "accuracy": None,
                "speed_over_fp32": None,
            }
        ],
        "preprocessing": None,
    }
    assert response.headers["etag"] == f'"1-{sha[:16]}"'
    # The URL it names serves exactly those bytes.
    blob = api.client.get(response.json()["url"], headers=api.admin)
    assert blob.content == b"model-bytes" * 10


def test_manifest_offers_the_int8_model_and_the_preprocessing(api: Api) -> None:
    job = submit_job(api)
    preprocessing = {"layout": "NCHW", "mean": [0.5], "std": [0.25], "value_scale": 1 / 255}
    digests = finish_job(
        api,
        job["id"],
        onnx=b"fp32" * 50,
        int8=b"int8" * 20,
        summary={
            "accuracy_after": 0.91,
            "int8": {"published": True, "accuracy": 0.9, "speed_over_fp32": 2.5},
            "preprocessing": preprocessing,
        },
    )
    api.client.put("/v1/deployments/cams", json={"job_id": job["id"]}, headers=api.admin)
    manifest = api.client.get("/v1/deployments/cams/manifest", headers=api.admin).json()
    assert manifest["sha256"] == digests["model.onnx"]  # fp32 stays the default for old clients
    assert [(v["name"], v["sha256"], v["size"], v["accuracy"]) for v in manifest["variants"]] == [
        ("fp32", digests["model.onnx"], 200, 0.91),
        ("int8", digests["model.int8.onnx"], 80, 0.9),
    ]
    assert [v["speed_over_fp32"] for v in manifest["variants"]] == [None, 2.5]
    assert manifest["preprocessing"] == preprocessing
    device = api.client.post(
        "/v1/devices", json={"name": "cam", "deployment": "cams"}, headers=api.admin
    ).json()
    blob = api.client.get(
        manifest["variants"][1]["url"], headers={"Authorization": f"Bearer {device['token']}"}
    )
    assert blob.status_code == 200 and blob.content == b"int8" * 20


def test_manifest_304_on_matching_etag_and_200_after_a_new_promotion(api: Api) -> None:
    first, _ = succeeded_job(api, b"one" * 50)
    api.client.put("/v1/deployments/cams", json={"job_id": first}, headers=api.admin)
    etag = api.client.get("/v1/deployments/cams/manifest", headers=api.admin).headers["etag"]

    same = api.client.get(
        "/v1/deployments/cams/manifest", headers={**api.admin, "If-None-Match": etag}
    )
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag

    second, _ = succeeded_job(api, b"two" * 50)
    api.client.put("/v1/deployments/cams", json={"job_id": second}, headers=api.admin)
    changed = api.client.get(
        "/v1/deployments/cams/manifest", headers={**api.admin, "If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.json()["version"] == 2 and changed.headers["etag"] != etag

    metrics = api.client.get("/metrics", headers=api.admin).text
    assert 'edgeprune_manifest_responses_total{status="304"} 1.0' in metrics
    assert 'edgeprune_manifest_responses_total{status="200"} 2.0' in metrics
    assert "edgeprune_manifest_not_modified_ratio 0.333" in metrics


def test_manifest_uses_public_url_when_configured(tmp_path: object) -> None:
    from pathlib import Path

    from fastapi.testclient import TestClient

    from service.api.main import create_app
    from tests.api.api_helpers import make_settings

    assert isinstance(tmp_path, Path)
    settings = make_settings(tmp_path, public_url="https://edge.example.org/")
    with TestClient(create_app(settings)) as client:
        api = Api(client=client, admin={}, settings=settings)
        api.admin = api.token()
        job_id, digests = succeeded_job(api)
        api.client.put("/v1/deployments/cams", json={"job_id": job_id}, headers=api.admin)
        manifest = api.client.get("/v1/deployments/cams/manifest", headers=api.admin).json()
    assert manifest["url"] == f"https://edge.example.org/v1/artifacts/{digests['model.onnx']}"


def test_promote_needs_json(api: Api) -> None:
    response = api.client.put(
        "/v1/deployments/cams",
        content=b"job_id=x",
        headers={**api.admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
