"""The round trip on image files: the engine compresses a task given as a folder of PNG and
JPEG files, and a device that runs the exported model, fp32 or INT8, on those same files
(raw 8-bit pixels, decoded by `edge-client predict`) gets the engine's labels for them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image
from typer.testing import CliRunner

from edge_client.cli import app
from edgeprune.contracts.artifacts import INT8_ONNX
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.pipeline import CompressRequest, run_compression

CLASSES = ("blue", "green", "red")


def _write_tree(root: Path) -> list[Path]:
    """train/ and test/ folders of 32×32 images whose dominant colour is the class; the
    test images are saved in several forms a camera or a user would produce. Returns the
    test files in the engine's reading order (class, then file name)."""
    rng = np.random.default_rng(0)
    tests: list[Path] = []
    for split, count in (("train", 16), ("test", 5)):
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 120, size=(32, 32, 3), dtype=np.uint8)
                pixels[..., 2 - label] += rng.integers(60, 136, dtype=np.uint8)  # RGB order
                image = Image.fromarray(pixels)
                if split == "train" or i == 0:
                    path = folder / f"{i}.png"
                    image.save(path)
                elif i == 1:
                    path = folder / f"{i}.jpg"
                    image.save(path, quality=90)
                elif i == 2:
                    path = folder / f"{i}.png"
                    image.convert("RGBA").save(path)
                elif i == 3:
                    path = folder / f"{i}.png"
                    image.convert("P").save(path)  # palette: decoded to RGB on both sides
                else:
                    path = folder / f"{i}.png"
                    image.convert("L").save(path)  # a grey picture of an RGB task
                if split == "test":
                    tests.append(path)
    return tests


def test_a_device_predicting_on_image_files_gets_the_engines_labels(tmp_path: Path) -> None:
    tree = tmp_path / "photos"
    test_files = _write_tree(tree)
    request = CompressRequest(
        arch="vgg11", data=str(tree), width_mult=0.25,
        config=CompressConfig(
            target=Target("flops", 0.5), structure_epochs=1, finetune_epochs=2, batch_size=16,
            calibration_batches=2, augment=False, device="cpu", lr=0.05, structure_lr=0.05,
            # INT8 calibrated on images read lazily from the tree; published whatever it
            # loses, so that the device's labels can be checked against it too.
            quantize="int8", int8_max_drop=1.0,
        ),
    )  # fmt: skip
    result = run_compression(request, tmp_path / "out")
    model = result.artifacts["model.onnx"]
    assert result.report["int8"]["published"] and INT8_ONNX in result.artifacts

    # The engine's evaluation: its own decoded, normalised test split through the model.
    data = load_task_data(str(tree))
    assert data.classes == list(CLASSES) and len(data.y_test) == len(test_files)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    expected = np.asarray(session.run(None, {"input": data.x_test[:].numpy()})[0]).argmax(1)
    engine_accuracy = float((expected == data.y_test.numpy()).mean())
    assert engine_accuracy > 0.5  # a trained model, not a constant one

    got = CliRunner().invoke(
        app, ["predict", *map(str, test_files), "--model", str(model), "--json"]
    )
    assert got.exit_code == 0, got.output
    labels = [row["label"] for row in json.loads(got.stdout)]
    assert labels == [CLASSES[i] for i in expected]
    assert "resized" not in got.stderr  # same size: the engine did not resize either

    int8 = result.artifacts[INT8_ONNX]
    session = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"])
    expected = np.asarray(session.run(None, {"input": data.x_test[:].numpy()})[0]).argmax(1)
    got = CliRunner().invoke(
        app, ["predict", *map(str, test_files), "--model", str(int8), "--json"]
    )
    assert got.exit_code == 0, got.output
    assert [row["label"] for row in json.loads(got.stdout)] == [CLASSES[i] for i in expected]
