"""report.py renders RESULTS.md from whatever JSON it finds, numbers included verbatim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.report import load_results, render
from bench.report_int8 import int8_payloads


def _run(method: str, target: float | None, seed: int, acc: float, flops: float) -> dict[str, Any]:
    return {
        "dataset": "builtin:digits",
        "arch": "vgg16",
        "width_mult": 0.25,
        "seed": seed,
        "method": method,
        "target_flops_reduction": target,
        "accuracy": acc,
        "flops": 100,
        "params": 10,
        "flops_reduction": flops,
        "params_reduction": 0.6,
        "seconds": 2.0 + seed,
        "epochs": 3,
    }


ENV = {"date": "2026-01-01T00:00:00+00:00", "cpu": "TestCPU 9000", "cpu_count": 2}


def _write(directory: Path) -> None:
    runs = []
    for seed, (ours, pfec) in enumerate([(0.90, 0.95), (0.92, 0.97)]):
        runs += [
            _run("unpruned", None, seed, 0.99, 0.0),
            _run("ours", 0.5, seed, ours, 0.502),
            _run("pfec", 0.5, seed, pfec, 0.504),
            _run("tp_taylor", 0.5, seed, 0.80, 0.506),
            _run("scratch", 0.5, seed, 0.70, 0.502),
        ]
    quality = {
        "environment": ENV,
        "quick": True,
        "settings": {
            "archs": [["vgg16", 0.25]],
            "seeds": [0, 1],
            "structure_epochs": 1,
            "finetune_epochs": 2,
            "pretrain_epochs": 4,
        },
        "pretrained": [{"dataset": "builtin:digits", "arch": "vgg16", "accuracy": 0.98}],
        "runs": runs,
    }
    speedup = {
        "environment": ENV,
        "quick": True,
        "results": [
            {
                "arch": "vgg16",
                "target_flops_reduction": 0.5,
                "achieved_flops_reduction": 0.5,
                "flops_ratio": 2.0,
                "batch": 1,
                "threads": 1,
                "baseline_p50_ms": 4.0,
                "pruned_p50_ms": 2.5,
                "speedup": 1.6,
                "speedup_over_flops_ratio": 0.8,
            }
        ],
    }
    int8 = {
        "environment": ENV,
        "quick": True,
        "results": [
            {
                "arch": "vgg16", "width_mult": 0.5, "target_flops_reduction": 0.5,
                "achieved_flops_reduction": 0.501, "batch": 1, "threads": 1,
                "baseline_p50_ms": 1.43, "pruned_fp32_p50_ms": 1.12, "pruned_int8_p50_ms": 0.38,
                "baseline_accuracy": 0.98, "pruned_fp32_accuracy": 0.99,
                "pruned_int8_accuracy": 0.985, "int8_over_fp32_speedup": 2.95,
                "int8_over_baseline_speedup": 3.76, "int8_accuracy_drop": 0.005,
            }
        ],
    }  # fmt: skip
    (directory / "quality.json").write_text(json.dumps(quality))
    (directory / "onnx_speedup.json").write_text(json.dumps(speedup))
    (directory / "int8.json").write_text(json.dumps(int8))


def test_results_md_holds_the_json_numbers(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    _write(results)
    out = tmp_path / "RESULTS.md"
    text = render(results, out)

    assert out.read_text() == text
    # mean ± sample std over the two seeds, in percent
    assert "| 50 % | ours (structure + weight learning) | 91.00 ± 1.41 | 50.20 ± 0.00 |" in text
    assert "96.00 ± 1.41" in text  # PFEC
    assert "| — | unpruned, fine-tuned | 99.00 ± 0.00 |" in text
    assert "2.5 ± 0.7" in text  # wall time
    assert "Pretrained checkpoint accuracy: 98.00 ± 0.00 %" in text
    # The headline admits the loss to PFEC, with its size, and the wins elsewhere.
    assert "vs pfec: 0 better, 0 tied, 1 worse" in text
    assert "vs tp_taylor: 1 better, 0 tied, 0 worse" in text
    assert "Where we lose: vgg16 ×0.25 at 50 % on builtin:digits vs pfec by 5.00 points" in text
    assert "| vgg16 | 1 | 50.0 | 2.00 | 1 | 1 | 4.00 | 2.50 | 1.60 | 0.80 |" in text
    assert "| vgg16 | 0.5 | 50.1 | 1 | 1.43 | 1.12 | 0.38 | 2.95 | 98.00 | 99.00 | 98.50 |" in text
    assert "pretrained on builtin:digits, compressed" in text  # a file from before `--data`
    assert "TestCPU 9000" in text
    for png in ("quality_accuracy_vs_flops.png", "onnx_speedup.png"):
        assert (results / png).stat().st_size > 1000
        assert f"](results/{png})" in text


def test_missing_results_render_an_empty_report(tmp_path: Path) -> None:
    text = render(tmp_path, tmp_path / "RESULTS.md")
    assert "No results yet." in text


def test_int8_results_are_found_by_their_rows_not_their_name(tmp_path: Path) -> None:
    """`bench.int8 --name anything` is rendered; a file of other rows named int8_* is not."""
    results = tmp_path / "results"
    results.mkdir()
    _write(results)
    (results / "int8.json").rename(results / "arm_board_run.json")
    other = {"environment": ENV, "results": [{"arch": "vgg16", "layers": 6}]}
    (results / "int8_multiple_other.json").write_text(json.dumps(other))
    payload = json.loads((results / "arm_board_run.json").read_text())
    payload |= {"data": "builtin:photos", "input_shape": [3, 32, 32]}
    (results / "arm_board_run.json").write_text(json.dumps(payload))
    assert int8_payloads(load_results(results)) == ["arm_board_run"]
    text = render(results, tmp_path / "RESULTS.md")
    assert "pretrained on builtin:photos (3×32×32 inputs), compressed" in text
    assert "INT8 over the pruned fp32 model (`arm_board_run`, builtin:photos, 1 thread" in text
    assert "| vgg16 | 0.5 | 50.1 | 1 | 1.43 | 1.12 | 0.38 | 2.95 | 98.00 | 99.00 | 98.50 |" in text
