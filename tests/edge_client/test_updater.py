"""One poll-update cycle against the test server, with real exported ONNX models."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from edge_client.api import ApiClient
from edge_client.backoff import Backoff
from edge_client.errors import IntegrityError, ModelInvalid
from edge_client.state import StateDir
from edge_client.updater import InstallFailure, Outcome, Updater
from tests.edge_client.edge_test_server import EdgeTestServer, TinyModels


@pytest.fixture
def api(edge_server: EdgeTestServer) -> ApiClient:
    client = ApiClient(
        edge_server.url,
        edge_server.device_token("cams"),
        backoff=Backoff(base=0.01, cap=0.05),
        rng=random.Random(0),
    )
    yield client  # type: ignore[misc]
    client.close()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_first_poll_installs_second_gets_304(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    manifest = edge_server.promote(
        "cams", tiny_models.bytes("pruned"), baseline=tiny_models.bytes("baseline")
    )
    state = StateDir(tmp_path)
    updater = Updater(api, state, "cams")

    result = updater.poll()
    assert result.outcome is Outcome.INSTALLED
    current = state.current()
    assert current is not None and current.manifest.version == 1
    assert hashlib.sha256(current.model_path.read_bytes()).hexdigest() == manifest["sha256"]
    assert current.baseline_path is not None
    assert current.baseline_path.read_bytes() == tiny_models.bytes("baseline")
    assert not list(state.downloads_dir.iterdir())  # parts moved into place

    downloads = len(edge_server.artifact_requests())
    assert updater.poll().outcome is Outcome.NOT_MODIFIED
    assert len(edge_server.artifact_requests()) == downloads


def test_new_promotion_is_picked_up_and_baseline_reused(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    baseline = tiny_models.bytes("baseline")
    edge_server.promote("cams", tiny_models.bytes("pruned"), baseline=baseline)
    state = StateDir(tmp_path)
    updater = Updater(api, state, "cams")
    updater.poll()
    v2 = edge_server.promote("cams", tiny_models.bytes("pruned_v2"), baseline=baseline)
    before = len(edge_server.artifact_requests())

    assert updater.poll().outcome is Outcome.INSTALLED
    current, previous = state.current(), state.previous()
    assert current is not None and previous is not None
    assert (current.manifest.version, previous.manifest.version) == (2, 1)
    assert current.baseline_path is not None and current.baseline_path.read_bytes() == baseline
    # Only the new model was fetched: the unchanged baseline was linked from current/.
    fetched = [r.path for r in edge_server.artifact_requests()[before:]]
    assert fetched == [v2["url"]]


def test_corrupted_download_is_rejected_and_current_untouched(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"))
    state = StateDir(tmp_path)
    updater = Updater(api, state, "cams")
    updater.poll()
    before = _snapshot(state.current_dir)

    v2 = edge_server.promote("cams", tiny_models.bytes("pruned_v2"))
    edge_server.corrupt.add(v2["sha256"])  # same length, wrong bytes
    failures: list[InstallFailure] = []
    updater.on_failure = failures.append
    with pytest.raises(IntegrityError, match="sha256"):
        updater.poll()
    ((failure),) = failures
    assert (failure.stage, failure.manifest.version) == ("checksum", 2)
    assert "sha256" in failure.error
    assert _snapshot(state.current_dir) == before
    assert state.previous() is None
    assert not list(state.downloads_dir.iterdir())  # wrong bytes are not resumed from
    assert not list(tmp_path.glob("incoming*"))

    # The transfer is fixed: the next poll (same manifest, no 304) installs it.
    edge_server.corrupt.clear()
    assert updater.poll().outcome is Outcome.INSTALLED
    assert state.current().manifest.version == 2


def test_size_mismatch_is_rejected(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    model = tiny_models.bytes("pruned")
    edge_server.promote("cams", model, size=len(model) - 10)
    state = StateDir(tmp_path)
    with pytest.raises(IntegrityError, match="more than"):
        Updater(api, state, "cams").poll()
    assert state.current() is None
    assert not list(state.downloads_dir.iterdir())


def test_model_onnxruntime_refuses_never_reaches_current(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"))
    state = StateDir(tmp_path)
    updater = Updater(api, state, "cams")
    updater.poll()
    before = _snapshot(state.current_dir)

    # Right sha256 and size (the manifest describes these bytes) but not a model.
    edge_server.promote("cams", b"\x08\x07this is not an onnx protobuf" * 50)
    failures: list[InstallFailure] = []
    updater.on_failure = failures.append
    with pytest.raises(ModelInvalid, match="onnxruntime cannot open") as info:
        updater.poll()
    assert info.value.stage == "load"
    assert [(f.stage, f.manifest.version) for f in failures] == [("load", 2)]
    assert _snapshot(state.current_dir) == before
    assert state.previous() is None

    # Refused once: the same manifest is not downloaded again on the next poll.
    downloads = len(edge_server.artifact_requests())
    assert updater.poll().outcome is Outcome.NOT_MODIFIED
    assert len(edge_server.artifact_requests()) == downloads


def test_input_shape_that_does_not_fit_the_model_is_refused(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"), input_shape=[1, 16, 16])
    state = StateDir(tmp_path)
    with pytest.raises(ModelInvalid, match="manifest says") as info:
        Updater(api, state, "cams").poll()
    assert info.value.stage == "inference"  # it opened; it does not fit the manifest
    assert state.current() is None


def test_wrong_number_of_classes_is_refused(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    edge_server.promote("cams", tiny_models.bytes("pruned"), classes=["x", "y"])
    state = StateDir(tmp_path)
    with pytest.raises(ModelInvalid, match="classes") as info:
        Updater(api, state, "cams").poll()
    assert info.value.stage == "inference"
    assert state.current() is None


def test_rollback_holds_the_version_back_until_a_newer_one(
    edge_server: EdgeTestServer, api: ApiClient, tiny_models: TinyModels, tmp_path: Path
) -> None:
    state = StateDir(tmp_path)
    updater = Updater(api, state, "cams")
    edge_server.promote("cams", tiny_models.bytes("pruned"))
    updater.poll()
    edge_server.promote("cams", tiny_models.bytes("pruned_v2"))
    updater.poll()

    assert state.rollback().manifest.version == 1
    assert updater.poll().outcome is Outcome.NOT_MODIFIED
    assert state.current().manifest.version == 1
    # Even without the ETag shortcut the rolled-away version is not reinstalled.
    poll = state.load_poll()
    poll.etag = None
    state.save_poll(poll)
    assert updater.poll().outcome is Outcome.HELD_BACK
    assert state.current().manifest.version == 1

    edge_server.promote("cams", tiny_models.bytes("baseline"))  # v3: a newer promotion
    assert updater.poll().outcome is Outcome.INSTALLED
    assert state.current().manifest.version == 3
