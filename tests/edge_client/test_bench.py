"""The CPU benchmark on real exported models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from edge_client import bench as bench_module
from edge_client.bench import BenchConfig, run_benchmark
from edge_client.cli import app
from edge_client.errors import ConfigError, DataError, Interrupted, ModelInvalid, NotSetUp
from tests.edge_client.edge_test_server import (
    TinyModels,
    described_model,
    normalised,
    random_input,
)


def test_percentiles_ordered_and_speedup_from_the_same_run(tiny_models: TinyModels) -> None:
    config = BenchConfig(threads=1, runs=30, warmup=3)
    result = run_benchmark(tiny_models.pruned, baseline=tiny_models.baseline, config=config)
    lat = result.latency_ms
    assert 0 < lat.min <= lat.p50 <= lat.p95 <= lat.p99 <= lat.max
    base = result.baseline_latency_ms
    assert base is not None and 0 < base.p50 <= base.p95 <= base.p99
    assert result.speedup == pytest.approx(base.p50 / lat.p50)
    # The baseline has ~100x the FLOPs of the pruned model: it must be measurably slower.
    assert result.speedup is not None and result.speedup > 1.5
    assert result.runs == 30 and result.threads == 1 and result.warmup == 3
    assert result.onnxruntime_version == ort.__version__
    assert result.peak_rss_mb > 10
    assert result.cpu["logical_cores"] >= 1


def test_throughput_counts_samples_per_batch(tiny_models: TinyModels) -> None:
    result = run_benchmark(tiny_models.pruned, config=BenchConfig(runs=20, warmup=2, batch=8))
    assert result.input_shape == [8, 3, 16, 16]
    # samples/s = batch / mean seconds per call
    assert result.throughput == pytest.approx(8 * 1000.0 / result.latency_ms.mean, rel=1e-9)
    assert result.speedup is None and result.baseline_latency_ms is None


def _labels(model: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"input": x})[0]).argmax(axis=1)


def test_accuracy_on_a_labelled_npz(tiny_models: TinyModels, tmp_path: Path) -> None:
    x = random_input(batch=20, seed=3)
    y = _labels(tiny_models.pruned, x)
    data = tmp_path / "labelled.npz"
    np.savez(data, x=x, y=y)
    config = BenchConfig(runs=3, warmup=0, batch=6)  # 20 is not a multiple of 6
    result = run_benchmark(
        tiny_models.pruned, baseline=tiny_models.baseline, config=config, data=data
    )
    assert result.accuracy == 1.0
    expected = float((_labels(tiny_models.baseline, x) == y).mean())
    assert result.baseline_accuracy == pytest.approx(expected)

    np.savez(data, x=x, y=(y + 1) % 4)
    assert run_benchmark(tiny_models.pruned, config=config, data=data).accuracy == 0.0


def test_data_that_does_not_fit_is_refused(tiny_models: TinyModels, tmp_path: Path) -> None:
    data = tmp_path / "bad.npz"
    np.savez(data, x=np.zeros((4, 3, 8, 8), np.float32), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="shape"):
        run_benchmark(tiny_models.pruned, config=BenchConfig(runs=1), data=data)
    np.savez(data, x=np.zeros((4, 3, 16, 16), np.uint8), y=np.zeros(4, np.int64))
    # Raw pixels, and a model that does not say how to normalise them.
    with pytest.raises(DataError, match=r"does not describe its input.*float32"):
        run_benchmark(tiny_models.pruned, config=BenchConfig(runs=1), data=data)


def test_accuracy_on_raw_pixels_with_the_models_preprocessing(
    tiny_models: TinyModels, tmp_path: Path
) -> None:
    model = described_model(tiny_models.pruned, tmp_path / "described.onnx")
    pixels = np.random.default_rng(7).integers(0, 256, size=(12, 16, 16, 3), dtype=np.uint8)
    y = _labels(model, normalised(pixels))
    y[:3] = (y[:3] + 1) % 4  # three wrong labels: 9 of 12 right
    data = tmp_path / "raw.npz"
    np.savez(data, x=pixels, y=y)  # NHWC uint8, as a camera gives them
    config = BenchConfig(runs=2, warmup=0, batch=5)
    result = run_benchmark(model, baseline=tiny_models.baseline, config=config, data=data)
    assert result.accuracy == 0.75
    base = _labels(tiny_models.baseline, normalised(pixels))
    assert result.baseline_accuracy == pytest.approx(float((base == y).mean()))

    # Float raw values need --raw: without it they are taken as normalised input.
    np.savez(data, x=pixels.astype(np.float32).transpose(0, 3, 1, 2), y=y)
    args = ["bench", "--model", str(model), "--data", str(data), "--runs", "2", "--json"]
    runner = CliRunner()
    as_raw = runner.invoke(app, [*args, "--raw"])
    assert as_raw.exit_code == 0, as_raw.output
    assert json.loads(as_raw.stdout)["accuracy"] == 0.75
    as_input = runner.invoke(app, args)
    assert as_input.exit_code == 0, as_input.output
    normalised_acc = float(
        (_labels(model, pixels.astype(np.float32).transpose(0, 3, 1, 2)) == y).mean()
    )
    assert json.loads(as_input.stdout)["accuracy"] == pytest.approx(normalised_acc)

    np.savez(data, x=pixels[:, :8], y=y)
    small = runner.invoke(app, [*args[:-1]])
    assert small.exit_code == 12 and "do not fit the model's input 3×16×16" in small.stderr


def test_invalid_model_and_config(tmp_path: Path, tiny_models: TinyModels) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelInvalid):
        run_benchmark(junk)
    with pytest.raises(ConfigError):
        BenchConfig(runs=0)


def test_cli_json_parses_and_table_prints(tiny_models: TinyModels) -> None:
    runner = CliRunner()
    args = ["bench", "--model", str(tiny_models.pruned), "--baseline", str(tiny_models.baseline)]
    args += ["--runs", "10", "--warmup", "1"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    lat = data["latency_ms"]
    assert isinstance(lat["p50"], float) and lat["p50"] <= lat["p95"] <= lat["p99"]
    assert data["speedup"] == pytest.approx(data["baseline_latency_ms"]["p50"] / lat["p50"])
    assert data["runs"] == 10

    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "latency p99 (ms)" in table.stdout and "speedup vs baseline" in table.stdout


def test_cli_bench_errors_exit_with_their_code(tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    result = CliRunner().invoke(app, ["bench", "--model", str(junk)])
    assert result.exit_code == ModelInvalid.exit_code
    assert "onnxruntime cannot open junk.onnx" in result.stderr
    empty = CliRunner().invoke(app, ["bench", "--state-dir", str(tmp_path / "none")])
    assert empty.exit_code == NotSetUp.exit_code


def test_runs_alternate_abba_and_warmup_is_untimed(
    tiny_models: TinyModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[tuple[str, bool]] = []
    real_run = bench_module._Subject.run

    def recording_run(self: bench_module._Subject, timed: bool) -> None:
        order.append((self.path.stem, timed))
        real_run(self, timed)

    monkeypatch.setattr(bench_module._Subject, "run", recording_run)
    config = BenchConfig(runs=4, warmup=2)
    result = run_benchmark(tiny_models.pruned, baseline=tiny_models.baseline, config=config)
    warm, timed = order[:4], order[4:]
    assert all(not t for _, t in warm)
    abba = ["pruned", "baseline", "baseline", "pruned"]
    assert [name for name, t in timed] == abba * 2
    assert all(t for _, t in timed)
    assert result.runs == 4


def test_stop_check_interrupts_a_benchmark(tiny_models: TinyModels) -> None:
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls > 3:
            raise Interrupted("stopped")

    with pytest.raises(Interrupted):
        run_benchmark(tiny_models.pruned, config=BenchConfig(runs=1000, warmup=0), check_stop=check)
    assert calls == 4


def test_peak_rss_is_the_clients_own_not_its_parents() -> None:
    """ru_maxrss survives exec: started by a parent that touched 300 MB, it reports 300 MB."""
    script = (
        "import subprocess, sys\n"
        "big = bytearray(300 * 1024 * 1024)\n"
        "for i in range(0, len(big), 4096): big[i] = 1\n"
        "code = 'from edge_client.bench import peak_rss_mb; print(peak_rss_mb())'\n"
        "print(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,"
        " check=True).stdout)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert float(out.stdout.strip()) < 200
