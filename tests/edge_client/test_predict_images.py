"""`edge-client predict` on image files: decoded with Pillow, fitted to the model's input,
preprocessed as the manifest (or the model's metadata) says; a clear error without Pillow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from typer.testing import CliRunner

from edge_client.cli import app
from tests.edge_client.edge_test_server import (
    ADMIN_TOKEN,
    CLASSES,
    DESCRIBED,
    EdgeTestServer,
    TinyModels,
    described_model,
    normalised,
)

runner = CliRunner()
MEAN, STD, SCALE = DESCRIBED["mean"], DESCRIBED["std"], DESCRIBED["value_scale"]


def _described(tiny_models: TinyModels, tmp_path: Path) -> Path:
    return described_model(tiny_models.pruned, tmp_path / "described.onnx")


def _expected(model: Path, pixels: np.ndarray) -> list[str]:
    """Labels of (N, H, W, 3) 0..255 pixels, normalised by the test's own arithmetic."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.asarray(session.run(None, {"input": normalised(pixels)})[0])
    return [CLASSES[i] for i in logits.argmax(1)]


def _pixels(seed: int, n: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)


def test_png_files_give_the_labels_of_their_pixels(tiny_models: TinyModels, tmp_path: Path) -> None:
    model = _described(tiny_models, tmp_path)
    pixels = _pixels(0, 4)
    files = []
    for i, image in enumerate(pixels):
        files.append(tmp_path / f"img{i}.png")
        Image.fromarray(image).save(files[-1])
    Image.fromarray(pixels[0]).convert("RGBA").save(tmp_path / "alpha.png")  # alpha dropped
    files.append(tmp_path / "alpha.png")
    result = runner.invoke(app, ["predict", *map(str, files), "--model", str(model), "--json"])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert [g["source"] for g in got] == [f.name for f in files]
    assert [g["label"] for g in got] == _expected(model, np.concatenate([pixels, pixels[:1]]))
    assert "resized" not in result.stderr


def test_a_grey_image_is_converted_and_a_larger_one_resized_and_the_user_told(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    model = _described(tiny_models, tmp_path)
    grey = np.random.default_rng(1).integers(0, 256, size=(16, 16), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    big = _pixels(2, 1, size=32)[0]
    Image.fromarray(big).save(tmp_path / "big.png")
    result = runner.invoke(
        app, ["predict", str(tmp_path / "grey.png"), str(tmp_path / "big.png"),
              "--model", str(model), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "big.png: resized from 32×32 to 16×16 (the model's input)" in result.stderr
    assert "grey.png" not in result.stderr
    # What the device must have fed: the grey image on three equal channels, and the big
    # one shrunk with Pillow's antialiasing bilinear filter per channel.
    shrunk = np.stack(
        [
            np.asarray(
                Image.fromarray(big[..., c])
                .convert("F")
                .resize((16, 16), Image.Resampling.BILINEAR)
            )
            for c in range(3)
        ],
        axis=-1,
    )
    fed = np.stack([np.repeat(grey[..., None], 3, axis=-1).astype(np.float32), shrunk])
    assert [g["label"] for g in json.loads(result.stdout)] == _expected(model, fed)


def test_arrays_and_images_together_and_bad_files(tiny_models: TinyModels, tmp_path: Path) -> None:
    model = _described(tiny_models, tmp_path)
    pixels = _pixels(3, 3)
    np.savez(tmp_path / "raw.npz", x=pixels[:2])  # NHWC uint8
    Image.fromarray(pixels[2]).save(tmp_path / "last.jpg", quality=95)
    with Image.open(tmp_path / "last.jpg") as jpeg:
        decoded = np.asarray(jpeg.convert("RGB"))
    result = runner.invoke(
        app, ["predict", str(tmp_path / "raw.npz"), str(tmp_path / "last.jpg"),
              "--model", str(model), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert [g["source"] for g in got] == ["raw.npz[0]", "raw.npz[1]", "last.jpg"]
    assert [g["label"] for g in got] == _expected(model, np.stack([*pixels[:2], decoded]))

    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    broken = runner.invoke(app, ["predict", str(tmp_path / "broken.png"), "--model", str(model)])
    assert broken.exit_code == 2 and "cannot read image" in broken.stderr


def test_without_pillow_images_name_the_extra_and_arrays_still_work(
    tiny_models: TinyModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _described(tiny_models, tmp_path)
    Image.fromarray(_pixels(4, 1)[0]).save(tmp_path / "cam.png")
    np.save(tmp_path / "raw.npy", _pixels(4, 1))
    monkeypatch.setitem(sys.modules, "PIL", None)  # `from PIL import Image` now fails
    result = runner.invoke(app, ["predict", str(tmp_path / "cam.png"), "--model", str(model)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: reading image files needs Pillow, an optional extra: "
        "pip install 'edgeprune[edge-images]'"
    )
    arrays = runner.invoke(app, ["predict", str(tmp_path / "raw.npy"), "--model", str(model)])
    assert arrays.exit_code == 0, arrays.output
    assert arrays.stdout.startswith("raw.npy: ")


def test_the_installed_model_is_fed_as_its_manifest_says(
    edge_server: EdgeTestServer, tiny_models: TinyModels, tmp_path: Path
) -> None:
    """The plain tiny model has no metadata: only the manifest can say how to feed it."""
    manifest = edge_server.promote("cams", tiny_models.bytes("pruned"))
    manifest["preprocessing"] = {"layout": "NCHW", "mean": MEAN, "std": STD, "value_scale": SCALE}
    state = ["--state-dir", str(tmp_path / "state")]
    registered = runner.invoke(
        app, ["register", "--server", edge_server.url, "--deployment", "cams", "--name", "cam",
              "--token", ADMIN_TOKEN, *state],
    )  # fmt: skip
    assert registered.exit_code == 0, registered.output
    ran = runner.invoke(app, ["run", "--once", "--runs", "2", "--warmup", "0", *state])
    assert ran.exit_code == 0, ran.output
    pixels = _pixels(5, 2)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(tmp_path / f"cam{i}.png")
    files = [str(tmp_path / f"cam{i}.png") for i in range(2)]
    result = runner.invoke(app, ["predict", *files, "--json", *state])
    assert result.exit_code == 0, result.output
    assert [g["label"] for g in json.loads(result.stdout)] == _expected(tiny_models.pruned, pixels)
    bare = runner.invoke(app, ["predict", *files, "--model", str(tiny_models.pruned)])
    assert bare.exit_code == 2 and "does not describe its input" in bare.stderr
