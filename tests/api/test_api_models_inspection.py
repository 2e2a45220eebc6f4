"""POST /v1/models with the worker's real inspection answering while the request waits.

The inspection runs the persistence side's own task body (`worker.inspect_model`) in a
thread, as an inspect worker process would after taking the message: the API's 201 and 422
answers here come from real checkpoint loading, not from values written by the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from infra.store.models import Model
from tests.api.api_helpers import Api, running_api

pytestmark = pytest.mark.slow


def tiny_checkpoint(tmp_path: Path, suffix: str) -> bytes:
    import torch

    from pruning.checkpoints import save_checkpoint
    from pruning.models.registry import ModelSpec, build_model

    torch.manual_seed(0)
    spec = ModelSpec(arch="vgg11", in_channels=1, num_classes=4, width_mult=0.25)
    path = tmp_path / f"tiny{suffix}"
    save_checkpoint(path, build_model(spec), spec)
    return path.read_bytes()


class InspectWorker(threading.Thread):
    """Inspects every pending model it finds, with the worker's code, until stopped."""

    def __init__(self, api: Api) -> None:
        super().__init__(daemon=True)
        from worker.context import build_context

        self.ctx = build_context(api.settings)
        self.stop = threading.Event()

    def run(self) -> None:
        from worker.inspect_model import inspect_uploaded_model

        while not self.stop.wait(0.05):
            with self.ctx.sessions() as session:
                pending = [m.id for m in session.query(Model).filter(Model.status == "pending")]
            for model_id in pending:
                inspect_uploaded_model(self.ctx, model_id)


@contextmanager
def inspecting(api: Api) -> Iterator[InspectWorker]:
    api.settings.inspect_wait_s = 60.0
    worker = InspectWorker(api)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop.set()
        worker.join(timeout=10)
        worker.ctx.engine.dispose()


@pytest.fixture
def inspect_worker(api: Api) -> Iterator[InspectWorker]:
    with inspecting(api) as worker:
        yield worker


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_loadable_checkpoint_is_201_with_params_and_flops(
    api: Api, inspect_worker: Any, tmp_path: Path, suffix: str
) -> None:
    data = tiny_checkpoint(tmp_path, suffix)
    started = time.monotonic()
    response = api.client.post(
        "/v1/models",
        files={"file": (f"tiny{suffix}", data)},
        data={"arch": "vgg11", "num_classes": "4", "input_shape": "1,32,32"},
        headers=api.admin,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "ready" and body["error"] is None
    assert body["params"] > 0 and body["flops"] > 0
    assert time.monotonic() - started < 60


def test_checkpoint_of_another_arch_is_422_with_the_workers_reason(
    api: Api, inspect_worker: Any, tmp_path: Path
) -> None:
    data = tiny_checkpoint(tmp_path, ".pt")
    response = api.client.post(
        "/v1/models",
        files={"file": ("tiny.pt", data)},
        data={"arch": "resnet20", "num_classes": "4", "input_shape": "1,32,32"},
        headers=api.admin,
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["detail"].startswith("checkpoint does not load into resnet20: ")
    assert "\n" not in problem["detail"]
    # The row stays, marked invalid, so a job naming it is refused with the same reason.
    listing = api.client.get("/v1/models", headers=api.admin).json()
    assert listing["data"][0]["status"] == "invalid"


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_an_upload_without_fields_answers_what_the_checkpoint_records(
    tmp_path: Path, database: str
) -> None:
    import torch

    from pruning.models.registry import ModelSpec, build_model

    plain = tmp_path / "plain.pt"
    torch.save(build_model(ModelSpec("resnet20", in_channels=1, num_classes=5)).state_dict(), plain)
    with running_api(tmp_path, database, "edgeprune_api_inspect") as api, inspecting(api):
        recorded = api.client.post(
            "/v1/models",
            files={"file": ("tiny.pt", tiny_checkpoint(tmp_path, ".pt"))},
            headers=api.admin,
        )
        assert recorded.status_code == 201, recorded.text
        body = recorded.json()
        assert (body["arch"], body["num_classes"], body["input_shape"]) == ("vgg11", 4, [1, 32, 32])
        assert body["status"] == "ready" and body["params"] > 0

        unnamed = api.client.post(
            "/v1/models", files={"file": ("plain.pt", plain.read_bytes())}, headers=api.admin
        )
        assert unnamed.status_code == 422, unnamed.text
        assert unnamed.json()["detail"] == (
            "checkpoint cannot be used: this checkpoint does not record its architecture: "
            "upload it again with --arch"
        )
        named = api.client.post(
            "/v1/models",
            files={"file": ("plain.pt", plain.read_bytes())},
            data={"arch": "resnet20"},
            headers=api.admin,
        )
        assert named.status_code == 201, named.text
        assert (named.json()["num_classes"], named.json()["input_shape"]) == (5, [1, 32, 32])

        too_small = api.client.post(
            "/v1/models",
            files={"file": ("tiny.pt", tiny_checkpoint(tmp_path, ".pt"))},
            data={"input_shape": "1,8,8"},
            headers=api.admin,
        )
        assert too_small.status_code == 422, too_small.text
        detail = too_small.json()["detail"]
        assert "does not run on 1x8x8 inputs" in detail and "--input-shape" in detail
        assert "Calculated" not in detail and "\n" not in detail
