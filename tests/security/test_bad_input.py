"""Bad input is refused with a clear problem+json 4xx, or, where only a worker can tell, as
an `invalid` model or a `failed` job with a clear message; the server keeps serving (the
`api` fixture checks it after every test) and nothing is stored for a refused upload.

Each hostile file is tried at both doors: the API's torch-free checks and the engine's
loaders (`pruning.checkpoints`, `pruning.data`), which is what the worker runs.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from infra.store import uploads
from infra.store.models import Dataset, Model
from pruning.checkpoints import CheckpointError, CheckpointMismatch, read_checkpoint
from pruning.config import InvalidTarget, Target
from pruning.data import DataError, load_task_data
from pruning.data.archives import ArchiveLimits
from pruning.models.registry import ModelSpec, build_model
from pruning.pipeline import InputShapeMismatch, inspect_model
from service.api.main import create_app
from tests.api.api_helpers import Api, job_body, make_settings, seed_dataset, seed_model
from tests.security.conftest import PROBLEM_JSON
from tests.security.hostile import (
    bomb_png,
    code_checkpoints,
    images,
    npz,
    npz_bomb,
    png,
    tar_of,
    torch_bytes,
    zip_bomb,
    zip_of,
    zip_with_a_duplicate,
)
from tests.support.databases import DATABASES, migrated_database

MODEL_FIELDS = {"arch": "vgg11", "num_classes": "10", "input_shape": "1,32,32"}


def assert_problem(response: Any, status: int, needle: str = "") -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    assert body["status"] == status
    # Our own problems have URN types; plain HTTP errors (an unknown route) are about:blank.
    assert body["type"].startswith("urn:edgeprune:problem:") or body["type"] == "about:blank"
    assert needle.lower() in body["detail"].lower(), body["detail"]
    return body


def assert_nothing_stored(api: Api) -> None:
    with api.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Model)) == 0
        assert session.scalar(select(func.count()).select_from(Dataset)) == 0
    assert list((api.settings.data_dir / "tmp").glob("*")) == []


def upload_model(api: Api, data: bytes, filename: str = "model.pt") -> Any:
    return api.client.post(
        "/v1/models", files={"file": (filename, data)}, data=MODEL_FIELDS, headers=api.admin
    )


def upload_dataset(api: Api, data: bytes, filename: str) -> Any:
    return api.client.post("/v1/datasets", files={"file": (filename, data)}, headers=api.admin)


# --- checkpoints that carry code -----------------------------------------------------------


def test_the_planted_payload_really_runs_when_unpickled(tmp_path: Path) -> None:
    """The control: the payloads below are live, so their marker's absence means something."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(code_checkpoints(marker)["torch-zip"])
    torch.load(path, weights_only=False)  # exactly what must never happen in EdgePrune
    assert marker.exists()


@pytest.mark.parametrize("kind", sorted(code_checkpoints(Path("x"))))
def test_api_refuses_a_checkpoint_carrying_code_without_running_it(
    api: Api, tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "ran"
    response = upload_model(api, code_checkpoints(marker)[kind])
    body = assert_problem(response, 422)
    assert body["errors"][0]["loc"] == ["body", "file"]
    assert any(word in body["detail"] for word in ("run code", "legacy pickle"))
    assert not marker.exists()
    assert_nothing_stored(api)


# torch warns that it reads pickle protocol 4 before refusing the code it carries: expected.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol 4:UserWarning")
@pytest.mark.parametrize("kind", sorted(code_checkpoints(Path("x"))))
def test_engine_refuses_a_checkpoint_carrying_code_without_running_it(
    tmp_path: Path, kind: str
) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "model.pt"
    path.write_bytes(code_checkpoints(marker)[kind])
    with pytest.raises(CheckpointError, match="run code"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="run code"):
        inspect_model(path, arch="vgg11", num_classes=10, input_shape=(1, 32, 32))
    assert not marker.exists()


# --- broken checkpoints --------------------------------------------------------------------


def _real_checkpoint(suffix: str) -> bytes:
    from safetensors.torch import save as save_safetensors

    state = build_model(ModelSpec("vgg11", in_channels=1, width_mult=0.25)).state_dict()
    return torch_bytes(state) if suffix == ".pt" else save_safetensors(state)


BROKEN: dict[str, tuple[str, Callable[[], bytes]]] = {
    "random-pt": (".pt", lambda: np.random.default_rng(0).bytes(5000)),
    "random-safetensors": (".safetensors", lambda: np.random.default_rng(1).bytes(5000)),
    "truncated-pt": (".pt", lambda: _real_checkpoint(".pt")[:20_000]),
    "truncated-safetensors": (".safetensors", lambda: _real_checkpoint(".safetensors")[:20_000]),
    "empty": (".pt", lambda: b""),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_checkpoints_are_422_at_the_api(api: Api, kind: str) -> None:
    suffix, make = BROKEN[kind]
    assert_problem(upload_model(api, make(), f"model{suffix}"), 422)
    assert_nothing_stored(api)


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_broken_checkpoints_are_refused_by_the_engine(tmp_path: Path, kind: str) -> None:
    suffix, make = BROKEN[kind]
    path = tmp_path / f"model{suffix}"
    path.write_bytes(make())
    with pytest.raises(CheckpointError):
        read_checkpoint(path)


def _save(tmp_path: Path, state: dict[str, torch.Tensor], name: str = "m.pt") -> Path:
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_a_state_dict_of_another_arch_makes_the_model_invalid(api: Api, tmp_path: Path) -> None:
    """Only loading tells, so the API accepts it as pending and the worker's inspection marks
    it `invalid` with the reason; a job on it is then a 422 quoting that reason."""
    from worker.context import build_context
    from worker.inspect_model import inspect_uploaded_model

    resnet = build_model(ModelSpec("resnet20", in_channels=1)).state_dict()
    response = upload_model(api, torch_bytes(resnet))
    assert response.status_code == 202, response.text
    model_id = response.json()["id"]
    ctx = build_context(api.settings)
    try:
        assert inspect_uploaded_model(ctx, model_id) == "invalid"
    finally:
        ctx.engine.dispose()
    shown = api.client.get(f"/v1/models/{model_id}", headers=api.admin).json()
    assert shown["status"] == "invalid" and "missing keys" in shown["error"]
    job = api.client.post("/v1/jobs", json=job_body(model_id, seed_dataset(api)), headers=api.admin)
    assert_problem(job, 422, "missing keys")

    # The engine's own answer, as the inspection runs it.
    with pytest.raises(CheckpointMismatch, match="missing keys"):
        inspect_model(_save(tmp_path, resnet), arch="vgg11", num_classes=10, input_shape=(1, 8, 8))


def test_wrong_shapes_are_named_by_the_engine(tmp_path: Path) -> None:
    state = build_model(ModelSpec("vgg11", in_channels=1)).state_dict()
    state["features.0.weight"] = torch.zeros(64, 1, 5, 5)
    with pytest.raises(
        CheckpointMismatch, match=r"features\.0\.weight: checkpoint \(64, 1, 5, 5\)"
    ):
        inspect_model(_save(tmp_path, state), arch="vgg11", num_classes=10, input_shape=(1, 32, 32))
    good = _save(tmp_path, build_model(ModelSpec("vgg11", in_channels=1)).state_dict(), "ok.pt")
    with pytest.raises(InputShapeMismatch, match="takes 1-channel inputs, not 3"):  # 3 claimed
        inspect_model(good, arch="vgg11", num_classes=10, input_shape=(3, 32, 32))
    with pytest.raises(InputShapeMismatch, match=r"does not run on 1x2x2 inputs \(C,H,W\): too"):
        inspect_model(good, arch="vgg11", num_classes=10, input_shape=(1, 2, 2))


def test_a_structure_record_cannot_make_the_engine_allocate_terabytes(tmp_path: Path) -> None:
    """Widths are read from the file; without the shape check before building, this record
    makes torch try to allocate ~36 TB."""
    state = build_model(ModelSpec("vgg11", in_channels=1)).state_dict()
    record = {"arch": "vgg11", "in_channels": 1, "widths": [1_000_000] * 8}
    path = tmp_path / "m.pt"
    torch.save({"state_dict": state, "structure": record}, path)
    with pytest.raises(CheckpointMismatch, match="mis-shaped"):
        read_checkpoint(path)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"features.0.weight": torch.full((64, 1, 3, 3), float("nan"))}, "NaN or infinite"),
        ({"features.0.weight": torch.zeros(64, 1, 3, 3).to_sparse()}, "not a dense tensor"),
        ({"features.0.weight": torch.zeros(64, 1, 3, 3, dtype=torch.complex64)}, "complex"),
        ({"classifier.weight": torch.tensor(1.0)}, "mis-shaped"),  # a 0-d head
        ({"features.0.weight": torch.zeros(0, 1, 3, 3)}, "can hold this checkpoint"),
    ],
    ids=["nan", "sparse", "complex", "scalar-head", "zero-width-stem"],
)
def test_tensors_that_are_not_weights_are_refused(
    tmp_path: Path, change: dict[str, torch.Tensor], needle: str
) -> None:
    state = {**build_model(ModelSpec("vgg11", in_channels=1)).state_dict(), **change}
    path = _save(tmp_path, state)
    with pytest.raises(CheckpointError, match=needle):
        # No arch hints: what `edgeprune compress` does with a plain state dict.
        from pruning.checkpoints import infer_spec

        infer_spec(read_checkpoint(path)[0], "vgg11")


# --- datasets ------------------------------------------------------------------------------

ESCAPED = "edgeprune-security-test-escaped.png"
CORRUPT_PNG = b"\x89PNG\r\n\x1a\n not really"
X = np.zeros((6, 1, 4, 4), np.float32)
Y = np.array([0, 1] * 3)


def _with(x: Any = X, **arrays: Any) -> Callable[[], bytes]:
    return lambda: npz(x=x, **{"y": Y, **arrays})


def _nan(value: float) -> np.ndarray:
    x = X.copy()
    x[2, 0, 1, 1] = value
    return x


def _beyond_float32() -> np.ndarray:
    # Finite as float64, infinite as the float32 the engine trains on.
    x = X.astype(np.float64)
    x[2, 0, 1, 1] = 1e300
    return x


# name -> (file name, bytes, the reason both doors give: the rules are one module,
# edgeprune.contracts.dataset_rules, so the words are the same)
DATASETS: dict[str, tuple[str, Callable[[], bytes], str]] = {
    "zip-dotdot": (
        "d.zip", lambda: zip_of({**images(), f"../{ESCAPED}": png()}), "outside the archive"
    ),
    "zip-absolute": (
        "d.zip", lambda: zip_of({**images(), f"/tmp/{ESCAPED}": png()}), "absolute path"
    ),
    "zip-drive": (
        "d.zip", lambda: zip_of({**images(), f"c:{ESCAPED}/1.png": png()}), "absolute path"
    ),
    "zip-symlink": (
        "d.zip", lambda: zip_of(images(), symlink=("cat/9.png", "/etc/passwd")), "is a link"
    ),
    "zip-duplicate": (
        "d.zip", lambda: zip_with_a_duplicate(images(), "cat/0.png"), "there twice"
    ),
    "tar-dotdot": (
        "d.tar.gz", lambda: tar_of({**images(), f"../{ESCAPED}": png()}), "outside the archive"
    ),
    "tar-absolute": (
        "d.tar.gz", lambda: tar_of({**images(), f"/tmp/{ESCAPED}": png()}), "absolute path"
    ),
    "tar-symlink": (
        "d.tar.gz",
        lambda: tar_of(images(), link=("cat/9.png", "/etc/passwd", tarfile.SYMTYPE)),
        "is a link",
    ),
    "tar-hardlink": (
        "d.tar.gz",
        lambda: tar_of(images(), link=("cat/9.png", "/etc/passwd", tarfile.LNKTYPE)),
        "is a link",
    ),
    "tar-device": (
        "d.tar.gz",
        lambda: tar_of(images(), link=("cat/9.png", "", tarfile.CHRTYPE)),
        "not a file or folder",
    ),
    "zip-bomb": ("d.zip", zip_bomb, "archive bomb"),
    "npz-bomb": ("d.npz", npz_bomb, "archive bomb"),
    "non-image": ("d.zip", lambda: zip_of({**images(), "cat/notes.txt": b"hi"}), "not an image"),
    "unreadable-image": (
        "d.zip", lambda: zip_of({**images(), "cat/0.png": CORRUPT_PNG}), "unreadable image"
    ),
    "decompression-bomb": (
        "d.zip", lambda: zip_of({**images(), "cat/0.png": bomb_png()}), "decompression bomb"
    ),
    "empty-class-folder": (
        "d.zip", lambda: zip_of({**images(), "bird/": b""}), "bird have no training sample"
    ),
    "single-class-folder": ("d.zip", lambda: zip_of(images(("cat",), 4)), "at least 2 are needed"),
    "one-image-per-class": ("d.tar.gz", lambda: tar_of(images(per_class=1)), "too few samples"),
    "npz-mismatched-lengths": ("d.npz", lambda: npz(x=X, y=Y[:5]), "6 samples but y has 5"),
    "npz-string-labels": ("d.npz", _with(y=Y.astype(str)), "integer class labels"),
    "npz-fractional-labels": ("d.npz", _with(y=Y + 0.5), "integer class labels"),
    "npz-bool-images": ("d.npz", _with(x=X > 0), "must hold numbers"),
    "npz-complex-images": ("d.npz", _with(x=X.astype(np.complex64)), "must hold numbers"),
    "npz-object-arrays": (
        "d.npz", _with(x=np.array([object()] * 6, dtype=object)), "object arrays are not accepted"
    ),
    "npz-nan": ("d.npz", _with(x=_nan(float("nan"))), "NaN"),
    "npz-inf": ("d.npz", _with(x=_nan(float("inf"))), "infinite"),
    "npz-beyond-float32": ("d.npz", _with(x=_beyond_float32()), "infinite"),
    "npz-single-class": ("d.npz", _with(y=np.zeros(6, int)), "at least 2 are needed"),
    "npz-too-few-for-a-split": ("d.npz", lambda: npz(x=X[:2], y=Y[:2]), "too few samples"),
    "npz-test-class-never-trained": (
        "d.npz", _with(x_test=X[:2], y_test=np.array([7, 7])), "no training sample"
    ),
}  # fmt: skip


def _escaped_nowhere(tmp_path: Path) -> None:
    for folder in (Path(tempfile.gettempdir()), Path("/tmp"), tmp_path, tmp_path.parent):
        assert not (folder / ESCAPED).exists(), f"an archive member escaped into {folder}"


@pytest.mark.parametrize("case", sorted(DATASETS))
def test_bad_datasets_are_422_at_the_api(api: Api, tmp_path: Path, case: str) -> None:
    filename, make, needle = DATASETS[case]
    body = assert_problem(upload_dataset(api, make(), filename), 422, needle)
    assert body["errors"][0]["loc"] == ["body", "file"]
    assert_nothing_stored(api)
    _escaped_nowhere(tmp_path)


@pytest.mark.parametrize("case", sorted(DATASETS))
def test_bad_datasets_are_refused_by_the_engine(tmp_path: Path, case: str) -> None:
    filename, make, needle = DATASETS[case]
    path = tmp_path / filename
    path.write_bytes(make())
    with pytest.raises(DataError, match=None) as refused:
        load_task_data(str(path))
    assert needle.lower() in str(refused.value).lower()
    _escaped_nowhere(tmp_path)


def test_folder_entries_of_a_real_tree_are_not_mistaken_for_empty_classes(api: Api) -> None:
    """What `zip -r` of a wrapper folder with train/ and test/ writes: every folder has its
    own entry. The empty-class rule must not fire on the wrapper or the split folders."""
    tree = {f"pets/{split}/{c}/{i}.png": png() for split in ("train", "test")
            for c in ("cat", "dog") for i in range(2)}  # fmt: skip
    folders = ["pets/", "pets/train/", "pets/test/", "pets/train/cat/", "pets/train/dog/",
               "pets/test/cat/", "pets/test/dog/"]  # fmt: skip
    response = upload_dataset(api, zip_of({**dict.fromkeys(folders, b""), **tree}), "p.zip")
    assert response.status_code == 201, response.text
    assert response.json()["classes"] == ["cat", "dog"] and response.json()["samples"] == 4


@pytest.mark.parametrize("filename", ["d.zip", "d.tar.gz"])
def test_archives_with_too_many_files_are_refused(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filename: str
) -> None:
    monkeypatch.setattr(api.settings, "max_dataset_files", 8)
    data = (zip_of if filename == "d.zip" else tar_of)(images(per_class=5))
    assert_problem(upload_dataset(api, data, filename), 422, "members")
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(DataError, match="more than 8 members"):
        load_task_data(str(path), archive_limits=ArchiveLimits(members=8))


def test_a_bad_image_past_the_first_fails_the_job_with_a_clear_message(
    api: Api, tmp_path: Path
) -> None:
    """The API reads one image header, so only the worker finds a corrupt second image: the
    job is `failed` with the file named, and the next job runs normally."""
    from pruning.checkpoints import save_checkpoint
    from worker.context import build_context
    from worker.run_job import JobRun

    archive = zip_of({**images(per_class=3), "dog/2.png": CORRUPT_PNG})
    uploaded = upload_dataset(api, archive, "pets.zip")
    assert uploaded.status_code == 201, uploaded.text
    spec = ModelSpec("vgg11", in_channels=3, num_classes=2, width_mult=0.125)
    save_checkpoint(tmp_path / "m.pt", build_model(spec), spec)
    sha, size = api.storage.put_file(tmp_path / "m.pt")
    with api.sessions.begin() as session:
        model_id = uploads.add_model(
            session, name="m", arch="vgg11", num_classes=2, input_shape=[3, 8, 8],
            filename="m.pt", format="pt", sha256=sha, size=size,
        ).id  # fmt: skip
        uploads.mark_model_ready(session, model_id, params=1, flops=1)
    job = api.client.post(
        "/v1/jobs", json=job_body(model_id, uploaded.json()["id"]), headers=api.admin
    ).json()
    ctx = build_context(api.settings)
    try:
        assert JobRun(ctx, job["id"], "test:1").execute() == "failed"
    finally:
        ctx.engine.dispose()
    shown = api.client.get(f"/v1/jobs/{job['id']}", headers=api.admin).json()
    assert shown["state"] == "failed" and shown["error_type"] == "DataError"
    assert "unreadable image" in shown["error_message"] and "dog/2.png" in shown["error_message"]


# --- job parameters ------------------------------------------------------------------------

# Requests that are refused store nothing, so these tests share one app (module scope).


@pytest.fixture(scope="module", params=DATABASES)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Api]:
    folder = tmp_path_factory.mktemp("shared")
    with migrated_database(request.param, folder, "edgeprune_bad_input") as database_url:
        settings = make_settings(
            folder, database_url=database_url, unauthenticated_rate_limit_per_minute=100_000
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            api = Api(client=client, admin={}, settings=settings)
            api.admin = api.token("admin")
            yield api
            assert client.get("/v1/jobs", headers=api.admin).status_code == 200


@pytest.fixture(scope="module")
def refs(shared: Api) -> tuple[str, str]:
    """A ready model and a dataset, for job bodies that are wrong elsewhere."""
    return seed_model(shared), seed_dataset(shared)


TARGETS: list[Any] = [0, 0.0, 1, 1.0, -0.5, 1.5, "0.5", None, True, [0.5], {"r": 0.5}]


@pytest.mark.parametrize("reduction", TARGETS, ids=repr)
def test_bad_reductions_are_422_naming_the_field(
    shared: Api, refs: tuple[str, str], reduction: Any
) -> None:
    body = job_body(*refs)
    body["target"]["reduction"] = reduction
    problem = assert_problem(shared.client.post("/v1/jobs", json=body, headers=shared.admin), 422)
    assert ["body", "target", "reduction"] in [e["loc"] for e in problem["errors"]]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_reductions_are_422(shared: Api, refs: tuple[str, str], literal: str) -> None:
    # Python's JSON parser accepts these literals; the schema must still refuse them.
    model, dataset = refs
    raw = (
        f'{{"model_id": "{model}", "dataset_id": "{dataset}", '
        f'"target": {{"metric": "flops", "reduction": {literal}}}}}'
    )
    response = shared.client.post(
        "/v1/jobs", content=raw, headers={**shared.admin, "content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["loc"] == ["body", "target", "reduction"]


@pytest.mark.parametrize("metric", ["latency", "FLOPS", "", None, 3])
def test_unknown_metrics_are_422(shared: Api, refs: tuple[str, str], metric: Any) -> None:
    body = job_body(*refs)
    body["target"]["metric"] = metric
    problem = assert_problem(shared.client.post("/v1/jobs", json=body, headers=shared.admin), 422)
    assert problem["errors"][0]["loc"] == ["body", "target", "metric"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("structure_epochs", -1),
        ("structure_epochs", 1001),
        ("structure_epochs", 10**12),
        ("structure_epochs", 2.5),
        ("structure_epochs", "3"),
        ("finetune_epochs", 0),
        ("finetune_epochs", -3),
        ("finetune_epochs", 10**9),
        ("batch_size", 0),
        ("batch_size", 10**6),
        ("lr", 0),
        ("lr", -0.1),
        ("lr", 1e9),
        ("seed", -1),
        ("unknown_field", 1),
    ],
    ids=lambda value: str(value)[:20],
)
def test_bad_job_numbers_are_422_naming_the_field(
    shared: Api, refs: tuple[str, str], field: str, value: Any
) -> None:
    body = {**job_body(*refs), field: value}
    problem = assert_problem(shared.client.post("/v1/jobs", json=body, headers=shared.admin), 422)
    assert problem["errors"][0]["loc"] == ["body", field]


@pytest.mark.parametrize(
    ("metric", "reduction"),
    [("flops", 0.0), ("flops", 1.0), ("flops", -1), ("flops", 2), ("flops", float("nan")),
     ("flops", float("inf")), ("flops", "0.5"), ("latency", 0.5)],
)  # fmt: skip
def test_the_engine_refuses_the_same_targets(metric: Any, reduction: Any) -> None:
    """Defence in depth: a job row written by anything but the API still cannot run."""
    with pytest.raises(InvalidTarget):
        Target(metric=metric, reduction=reduction)


# --- HTTP-level mistakes -------------------------------------------------------------------

JSON_ROUTES = [
    ("POST", "/v1/jobs"),
    ("PUT", "/v1/deployments/cams"),
    ("POST", "/v1/devices"),
    ("POST", "/v1/deployments/cams/rollback"),
    ("POST", "/v1/deployments/cams/widen"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "raw", [b"{", b'{"a": 1} trailing', b"\xff\xfe", b"{'single': 'quotes'}"], ids=repr
)
def test_malformed_json_is_a_422_problem(shared: Api, method: str, path: str, raw: bytes) -> None:
    response = shared.client.request(
        method, path, content=raw, headers={**shared.admin, "content-type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert problem["errors"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES[:3])
@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"null", b"42"])
def test_json_that_is_not_an_object_is_a_422_problem(
    shared: Api, method: str, path: str, raw: bytes
) -> None:
    response = shared.client.request(
        method, path, content=raw, headers={**shared.admin, "content-type": "application/json"}
    )
    assert_problem(response, 422)


@pytest.mark.parametrize(("method", "path"), JSON_ROUTES)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_json_routes_refuse_other_content_types_with_415(
    shared: Api, method: str, path: str, content_type: str
) -> None:
    response = shared.client.request(
        method, path, content=b"{}", headers={**shared.admin, "content-type": content_type}
    )
    assert_problem(response, 415, "application/json")


@pytest.mark.parametrize("path", ["/v1/models", "/v1/datasets"])
@pytest.mark.parametrize("content_type", ["application/json", "text/plain", "multipart/form-data"])
def test_uploads_refuse_anything_but_multipart_with_a_boundary(
    shared: Api, path: str, content_type: str
) -> None:
    response = shared.client.post(
        path, content=b"{}", headers={**shared.admin, "content-type": content_type}
    )
    assert_problem(response, 415, "multipart/form-data")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/models/mdl_nope"),
        ("GET", "/v1/datasets/dst_nope"),
        ("GET", "/v1/jobs/job_nope"),
        ("GET", "/v1/jobs/job_nope/events"),
        ("POST", "/v1/jobs/job_nope/cancel"),
        ("GET", "/v1/jobs/job_nope/report"),
        ("GET", "/v1/jobs/job_nope/artifacts"),
        ("GET", "/v1/jobs/job_nope/artifacts/model.onnx"),
        ("GET", "/v1/deployments/nope"),
        ("GET", "/v1/deployments/nope/manifest"),
        ("POST", "/v1/deployments/nope/rollback"),
        ("POST", "/v1/deployments/nope/widen"),
        ("GET", "/v1/deployments/nope/fleet"),
        ("GET", "/v1/devices/dev_nope"),
        ("POST", "/v1/devices/dev_nope/revoke"),
        ("DELETE", "/v1/devices/dev_nope"),
        ("GET", "/v1/devices/dev_nope/reports"),
        ("POST", "/v1/devices/dev_nope/reports"),
        ("GET", f"/v1/artifacts/{'0' * 64}"),
        ("GET", "/v1/no-such-route"),
    ],
)
def test_unknown_ids_are_404_problems(shared: Api, method: str, path: str) -> None:
    kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
    assert_problem(shared.client.request(method, path, headers=shared.admin, **kwargs), 404)


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=100000", "limit=abc", "offset=-1", "state=exploded"]
)
def test_bad_query_parameters_are_422(shared: Api, query: str) -> None:
    assert_problem(shared.client.get(f"/v1/jobs?{query}", headers=shared.admin), 422)


@pytest.mark.parametrize("digest", ["abc", "0" * 63, "G" * 64, "0" * 64 + "0"])
def test_malformed_digests_are_422(shared: Api, digest: str) -> None:
    assert_problem(shared.client.get(f"/v1/artifacts/{digest}", headers=shared.admin), 422)
