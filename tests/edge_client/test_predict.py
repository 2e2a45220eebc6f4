"""`edge-client predict`: raw samples in, labels out, preprocessed as the model says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from typer.testing import CliRunner

from edge_client.cli import app
from tests.edge_client.edge_test_server import CLASSES, INPUT_SHAPE, TinyModels

runner = CliRunner()


def _described(tiny_models: TinyModels, tmp_path: Path) -> Path:
    """The tiny model with the metadata an EdgePrune export writes."""
    model = onnx.load(str(tiny_models.pruned))
    meta = {
        "input_shape": INPUT_SHAPE, "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3],
        "value_scale": 1 / 255, "classes": CLASSES,
    }  # fmt: skip
    for key, value in meta.items():
        model.metadata_props.add(key=f"edgeprune.{key}", value=json.dumps(value))
    path = tmp_path / "described.onnx"
    onnx.save(model, str(path))
    return path


def test_predict_normalises_raw_pixels_as_the_metadata_says(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    model = _described(tiny_models, tmp_path)
    pixels = np.random.default_rng(0).integers(0, 256, size=(5, 16, 16, 3)).astype(np.uint8)
    np.save(tmp_path / "pixels.npy", pixels)  # NHWC, as a camera gives them
    result = runner.invoke(
        app, ["predict", str(tmp_path / "pixels.npy"), "--model", str(model), "--json"]
    )
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    x = pixels.transpose(0, 3, 1, 2) / 255.0
    x = (x - np.array([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1)) / np.array([0.2, 0.25, 0.3]).reshape(
        1, 3, 1, 1
    )
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = np.asarray(session.run(None, {"input": x.astype(np.float32)})[0]).argmax(1)
    assert [g["label"] for g in got] == [CLASSES[i] for i in expected]
    assert all(len(g["top"]) == 3 for g in got)


def test_predict_refuses_what_it_cannot_feed(tiny_models: TinyModels, tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", np.zeros((2, 3, 16, 16), dtype=np.uint8))
    bare = runner.invoke(
        app, ["predict", str(tmp_path / "ok.npy"), "--model", str(tiny_models.pruned)]
    )
    assert bare.exit_code == 2 and "does not describe its input" in bare.stderr
    np.save(tmp_path / "small.npy", np.zeros((2, 3, 8, 8), dtype=np.uint8))
    model = _described(tiny_models, tmp_path)
    small = runner.invoke(app, ["predict", str(tmp_path / "small.npy"), "--model", str(model)])
    assert small.exit_code == 2 and "do not fit the model's input 3×16×16" in small.stderr
    none = runner.invoke(
        app, ["predict", str(tmp_path / "ok.npy"), "--state-dir", str(tmp_path / "s")]
    )
    assert none.exit_code == 8 and "no model installed yet" in none.stderr
