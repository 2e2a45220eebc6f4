"""`--also-fp32`: a device running the int8 model also times the fp32 pruned model in the
same run, and its report says what each step (pruning, then quantization) bought."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static
from typer.testing import CliRunner

from edge_client.cli import app
from edge_client.manifest import Manifest
from edge_client.state import FP32_FILE, StateDir
from edgeprune.contracts import edge as contract
from tests.edge_client.edge_test_server import (
    ADMIN_TOKEN,
    EdgeTestServer,
    TinyModels,
    random_input,
    sha256,
)

cli = CliRunner()


class _Calibration(CalibrationDataReader):
    def __init__(self) -> None:
        self._batches = iter([{"input": random_input(batch=4, seed=s)} for s in range(4)])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


@pytest.fixture(scope="module")
def int8_model(tiny_models: TinyModels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real static QDQ int8 form of the tiny pruned model, as the engine publishes."""
    path = tmp_path_factory.mktemp("int8") / "model.int8.onnx"
    quantize_static(
        str(tiny_models.pruned), str(path), _Calibration(), quant_format=QuantFormat.QDQ,
        per_channel=True,
    )  # fmt: skip
    return path


def _publish_int8(server: EdgeTestServer, tiny_models: TinyModels, int8: Path) -> contract.Manifest:
    fp32_bytes, int8_bytes = tiny_models.bytes("pruned"), int8.read_bytes()
    manifest = server.promote("cams", fp32_bytes, baseline=tiny_models.bytes("baseline"))
    int8_sha = server.add_artifact(int8_bytes)
    manifest["variants"] = [
        {"name": "fp32", "sha256": manifest["sha256"], "size": len(fp32_bytes),
         "url": manifest["url"], "accuracy": 0.9, "speed_over_fp32": None},
        {"name": "int8", "sha256": int8_sha, "size": len(int8_bytes),
         "url": f"/v1/artifacts/{int8_sha}", "accuracy": 0.9, "speed_over_fp32": 1.5},
    ]  # fmt: skip
    return manifest


def _register(server: EdgeTestServer, state: list[str]) -> None:
    args = ["register", "--server", server.url, "--deployment", "cams", "--name", "cam"]
    assert cli.invoke(app, [*args, "--token", ADMIN_TOKEN, *state]).exit_code == 0


def test_the_manifest_remembers_the_fp32_model_beside_the_chosen_int8() -> None:
    fp32, int8 = "a" * 64, "b" * 64
    body = {
        "deployment": "cams", "version": 3, "sha256": fp32, "size": 200, "url": f"/a/{fp32}",
        "variants": [
            {"name": "fp32", "sha256": fp32, "size": 200, "url": f"/a/{fp32}"},
            {"name": "int8", "sha256": int8, "size": 80, "url": f"/a/{int8}"},
        ],
    }  # fmt: skip
    chosen = Manifest.from_json(body, None, "int8")
    assert (chosen.fp32_sha256, chosen.fp32_size, chosen.fp32_url) == (fp32, 200, f"/a/{fp32}")
    saved = Manifest.from_json(chosen.to_json())  # as current/manifest.json is read back
    assert (saved.variant, saved.fp32_sha256) == ("int8", fp32)
    as_fp32 = Manifest.from_json(body, None, "fp32")
    assert as_fp32.fp32_url is None and as_fp32.fp32_sha256 is None  # it is the model


def test_run_also_fp32_reports_baseline_fp32_and_int8_from_one_run(
    edge_server: EdgeTestServer, tiny_models: TinyModels, int8_model: Path, tmp_path: Path
) -> None:
    manifest = _publish_int8(edge_server, tiny_models, int8_model)
    state = ["--state-dir", str(tmp_path / "state")]
    _register(edge_server, state)
    run = ["run", "--once", "--runs", "6", "--warmup", "1", "--variant", "int8", *state]
    result = cli.invoke(app, [*run, "--also-fp32"])
    assert result.exit_code == 0, result.output
    installed = StateDir(tmp_path / "state").current()
    assert installed is not None and installed.fp32_path is not None
    assert sha256(installed.fp32_path.read_bytes()) == manifest["sha256"]  # verified fp32
    assert sha256(installed.model_path.read_bytes()) == manifest["variants"][1]["sha256"]

    ((_, report),) = edge_server.reports
    assert report["variant"] == "int8"
    lat, fp32, base = report["latency"], report["fp32_latency"], report["baseline_latency"]
    assert 0 < fp32["p50_ms"] <= fp32["p95_ms"] <= fp32["p99_ms"]
    assert report["speedup_vs_fp32"] == pytest.approx(fp32["p50_ms"] / lat["p50_ms"])
    assert report["speedup"] == pytest.approx(base["p50_ms"] / lat["p50_ms"])

    # The installed fp32 model is timed by `bench --also-fp32` too, in a table or JSON.
    bench = ["bench", "--runs", "4", "--warmup", "0", "--also-fp32", *state]
    table = cli.invoke(app, bench)
    assert table.exit_code == 0, table.output
    assert "fp32 pruned" in table.stdout and "speedup vs fp32 pruned (p50)" in table.stdout
    data = json.loads(cli.invoke(app, [*bench, "--json"]).stdout)
    assert data["fp32"].endswith(FP32_FILE) and data["fp32_latency_ms"]["p50"] > 0


def test_without_the_flag_nothing_extra_is_fetched_or_reported(
    edge_server: EdgeTestServer, tiny_models: TinyModels, int8_model: Path, tmp_path: Path
) -> None:
    _publish_int8(edge_server, tiny_models, int8_model)
    state = ["--state-dir", str(tmp_path / "state")]
    _register(edge_server, state)
    result = cli.invoke(app, ["run", "--once", "--runs", "3", "--warmup", "0", *state])
    assert result.exit_code == 0, result.output
    installed = StateDir(tmp_path / "state").current()
    assert installed is not None and installed.fp32_path is None
    assert installed.manifest.variant == "int8"  # auto picks the int8 model
    ((_, report),) = edge_server.reports
    assert report["fp32_latency"] is None and report["speedup_vs_fp32"] is None
    fetched = {r.path.rsplit("/", 1)[-1] for r in edge_server.artifact_requests()}
    assert installed.manifest.fp32_sha256 not in fetched

    missing = cli.invoke(app, ["bench", "--runs", "2", "--also-fp32", *state])
    assert missing.exit_code == 2 and "run --also-fp32" in missing.stderr


def test_a_corrupted_fp32_download_never_blocks_the_int8_model(
    edge_server: EdgeTestServer, tiny_models: TinyModels, int8_model: Path, tmp_path: Path
) -> None:
    manifest = _publish_int8(edge_server, tiny_models, int8_model)
    edge_server.corrupt.add(manifest["sha256"])  # the fp32 bytes arrive wrong
    state = ["--state-dir", str(tmp_path / "state")]
    _register(edge_server, state)
    run = ["run", "--once", "--runs", "3", "--warmup", "0", "--also-fp32", *state]
    result = cli.invoke(app, run)
    assert result.exit_code == 0, result.output
    installed = StateDir(tmp_path / "state").current()
    assert installed is not None and installed.manifest.variant == "int8"
    assert installed.fp32_path is None
    ((_, report),) = edge_server.reports
    assert report["fp32_latency"] is None and report["latency"]["p50_ms"] > 0
