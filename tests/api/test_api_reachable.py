"""A target past what the model's floors allow is refused when the job is submitted (422,
with the limit), from the limits its inspection recorded: on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.store import uploads
from tests.api.api_helpers import Api, job_body, running_api

# Channel multiple 1 allows 95% fewer FLOPs, 2..8 allow 90%, 9..64 allow 60%.
LIMITS = {
    "flops": [0.95] + [0.9] * 7 + [0.6] * 56,
    "params": [0.97] * 64,
    "channels": [0.85] * 64,
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def api(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Api]:
    with running_api(tmp_path, request.param, "edgeprune_api_reachable") as api:
        yield api


def _model(api: Api, limits: dict[str, Any] | None) -> str:
    with api.sessions.begin() as session:
        model = uploads.add_model(
            session, name="m", arch="vgg11", num_classes=10, input_shape=(1, 8, 8),
            filename="m.pt", format="pt", sha256="a" * 64, size=1,
        )  # fmt: skip
        uploads.mark_model_ready(session, model.id, params=1000, flops=5000, limits=limits)
        return model.id


def _dataset(api: Api, classes: int) -> str:
    with api.sessions.begin() as session:
        return uploads.add_dataset(
            session, name="d", filename="d.npz", format="npz", sha256="0" * 64, size=10,
            samples=20, classes=[str(c) for c in range(classes)], input_shape=(1, 8, 8),
        ).id  # fmt: skip


def _submit(
    api: Api, model: str, dataset: str, metric: str, reduction: float, **extra: Any
) -> httpx.Response:
    body = job_body(model, dataset, target={"metric": metric, "reduction": reduction}, **extra)
    return api.client.post("/v1/jobs", json=body, headers=api.admin)


def test_a_target_past_the_floors_is_refused_at_submission_with_the_limit(api: Api) -> None:
    model, data = _model(api, LIMITS), _dataset(api, 10)
    refused = _submit(api, model, data, "flops", 0.96)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert "flops reduction of 0.960 is out of reach" in problem["detail"]
    assert "gives 0.950" in problem["detail"] and model in problem["detail"]
    assert problem["errors"][0]["loc"] == ["body", "target", "reduction"]
    assert _submit(api, model, data, "params", 0.98).status_code == 422
    assert _submit(api, model, data, "channels", 0.86).status_code == 422
    # Nothing was queued for the refused ones; the limit itself is accepted.
    assert api.client.get("/v1/jobs", headers=api.admin).json()["count"] == 0
    for metric, limit in (("flops", 0.95), ("params", 0.97), ("channels", 0.85)):
        assert _submit(api, model, data, metric, limit).status_code == 202


def test_the_check_uses_the_jobs_own_channel_multiple(api: Api) -> None:
    model, data = _model(api, LIMITS), _dataset(api, 10)
    assert _submit(api, model, data, "flops", 0.92).status_code == 202
    at_8 = _submit(api, model, data, "flops", 0.92, channel_multiple=8)
    assert at_8.status_code == 422 and "at channel_multiple 8" in at_8.json()["detail"]
    at_16 = _submit(api, model, data, "flops", 0.7, channel_multiple=16)
    assert at_16.status_code == 422 and "gives 0.600" in at_16.json()["detail"]
    assert _submit(api, model, data, "flops", 0.6, channel_multiple=16).status_code == 202


def test_without_limits_or_with_other_classes_the_worker_decides(api: Api) -> None:
    # Another number of classes: the head is made afresh and the limit moves a little.
    other_classes = _submit(api, _model(api, LIMITS), _dataset(api, 2), "flops", 0.99)
    assert other_classes.status_code == 202, other_classes.text
    # A model inspected before limits were recorded.
    unrecorded = _submit(api, _model(api, None), _dataset(api, 10), "flops", 0.99)
    assert unrecorded.status_code == 202, unrecorded.text


def test_a_model_shows_its_largest_reductions(api: Api) -> None:
    with_limits, without = _model(api, LIMITS), _model(api, None)
    shown = api.client.get(f"/v1/models/{with_limits}", headers=api.admin).json()
    assert shown["max_reduction"] == {"flops": 0.95, "params": 0.97, "channels": 0.85}
    assert "limits" not in shown
    assert (
        api.client.get(f"/v1/models/{without}", headers=api.admin).json()["max_reduction"] is None
    )
