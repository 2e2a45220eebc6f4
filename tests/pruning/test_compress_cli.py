"""`edgeprune compress` / `edgeprune pretrain` end to end, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from pruning.report import FLOPS_NOTE


def edgeprune(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeprune", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"OMP_NUM_THREADS": "2", "PATH": "/usr/bin:/bin"},
    )


def test_pretrain_then_compress_on_digits(tmp_path: Path) -> None:
    ck = tmp_path / "ck.pt"
    done = edgeprune(
        "pretrain",
        "--arch",
        "vgg11",
        "--width-mult",
        "0.25",
        "--epochs",
        "1",
        "--out",
        str(ck),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert ck.is_file()
    # --json: stdout is one JSON object, the epoch lines went to stderr.
    pretrained = json.loads(done.stdout)
    assert pretrained["checkpoint"] == str(ck) and pretrained["arch"] == "vgg11"
    assert [e["epoch"] for e in pretrained["epochs"]] == [1]
    assert pretrained["accuracy"] == pretrained["epochs"][-1]["accuracy"]
    assert pretrained["structure"]["width_mult"] == 0.25
    assert "epoch 1/1" in done.stderr

    out = tmp_path / "out"
    done = edgeprune(
        "compress",
        "--arch",
        "vgg11",
        "--checkpoint",
        str(ck),
        "--data",
        "builtin:digits",
        "--target",
        "flops=0.5",
        "--structure-epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--distill",
        "0.5",
        "--distill-phases",
        "both",
        "--target-fit",
        "cost_aware",
        "--out",
        str(out),
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    names = [
        "model.onnx",
        "baseline.onnx",
        "pruned.pt",
        "structure.json",
        "report.json",
        "channels.png",
        "history.png",
    ]
    for name in names:
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    # --json: stdout is one object in the job summary's vocabulary, plus the files written.
    result = json.loads(done.stdout)
    assert result["achieved"] == report["achieved"] and result["target"] == report["target"]
    assert result["accuracy_before"] == report["baseline"]["accuracy"]
    assert result["accuracy_after"] == report["pruned"]["accuracy"]
    assert result["flops_after"] == report["pruned"]["flops"]
    assert result["params_before"] == report["baseline"]["params"]
    assert result["preprocessing"]["layout"] == "NCHW" and result["int8"] is None
    assert result["out_dir"] == str(out)
    assert set(names) <= set(result["artifacts"])
    assert all(Path(path).is_file() for path in result["artifacts"].values())
    assert abs(report["achieved"]["flops"] - 0.5) <= 0.01
    target = report["target"]
    assert (target["metric"], target["reduction"]) == ("flops", 0.5)
    assert 0.5 < target["reachable"] < 1.0  # every unit at its floor
    assert report["notes"] == [FLOPS_NOTE]  # room to spare: no note about the floors
    assert report["config"]["head_reinitialised"] is False
    assert (report["config"]["distill"], report["config"]["distill_phases"]) == (0.5, "both")
    assert report["config"]["target_fit"] == "cost_aware"
    # The checkpoint was trained: the baseline is far above chance (10 classes).
    assert report["baseline"]["accuracy"] > 0.3
    assert [h["phase"] for h in report["history"]] == ["structure_learning", "weight_learning"]
    assert report["checks"]["masked_vs_pruned_max_abs_diff"] <= 1e-4
    assert report["checks"]["onnx_vs_torch_max_abs_diff"] <= 1e-4
    assert {u["name"] for u in report["units"]} == set(report["history"][0]["active"])
    first = report["history"][0]
    assert set(first["proposed"]) == set(first["allocation"]) == set(first["active"])
    assert {"learned_moves", "fit_moved", "reverted"} <= set(first)
    # From a checkpoint both phases start at the modest rate.
    assert (report["config"]["lr"], report["config"]["structure_lr"]) == (0.01, 0.01)
    graph = onnx.load(str(out / "model.onnx")).graph
    assert [i.name for i in graph.input] == ["input"]
    assert [o.name for o in graph.output] == ["logits"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert (out / "channels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--arch", "vgg99"], "unknown arch"),
        (["--arch", "vgg11", "--target", "flops=1.5"], "target reduction must be in (0, 1)"),
        (["--arch", "vgg11", "--target", "latency=0.5"], "unknown target metric"),
        (["--arch", "vgg11", "--data", "/nonexistent/data.npz"], "data.npz' does not exist"),
        (["--arch", "vgg11", "--checkpoint", "/nonexistent/ck.pt"], "does not exist"),
        (["--arch", "vgg11", "--distill", "0.5"], "--distill needs --checkpoint"),
    ],
)
def test_bad_arguments_exit_nonzero_with_one_line(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    done = edgeprune("compress", *args, "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and reason in lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], (0.1, 0.1)),  # from scratch: the paper's rate
        (["--checkpoint", "CK"], (0.01, 0.01)),
        (["--lr", "0.05"], (0.05, 0.05)),
        (["--lr", "0.05", "--structure-lr", "0.002"], (0.05, 0.002)),
    ],
)
def test_learning_rate_defaults_depend_on_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], expected: tuple[float, float]
) -> None:
    from typer.testing import CliRunner

    import pruning.pipeline
    from edgeprune.cli import app

    seen = []

    def capture(request: pruning.pipeline.CompressRequest, *_: object) -> None:
        seen.append((request.config.lr, request.config.structure_lr))
        raise SystemExit(0)

    monkeypatch.setattr(pruning.pipeline, "run_compression", capture)
    checkpoint = tmp_path / "ck.pt"
    checkpoint.write_bytes(b"unused")
    args = [str(checkpoint) if a == "CK" else a for a in args]
    CliRunner().invoke(app, ["compress", "--arch", "vgg11", *args])
    assert seen == [expected]


README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_example() -> str:
    text = README.read_text()
    start = text.index("```python\n# my_nets.py")
    return text[start + len("```python\n") : text.index("```", start + 10)]


def test_the_readme_own_model_example_compresses(tmp_path: Path) -> None:
    """The README's "Your own model" example, run as written, from a plain state dict."""
    (tmp_path / "my_nets.py").write_text(_readme_example())
    import torch

    sys.path.insert(0, str(tmp_path))
    try:
        from my_nets import build_net  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
    torch.save(build_net(num_classes=10, in_channels=1).state_dict(), tmp_path / "state.pt")
    done = edgeprune(
        "compress", "--model", "my_nets.py:build_net", "--checkpoint", "state.pt",
        "--data", "builtin:digits", "--target", "flops=0.5", "--structure-epochs", "1",
        "--finetune-epochs", "1", "--calibration-batches", "2", "--out", "out",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert abs(report["achieved"]["flops"] - 0.5) <= 0.01
    assert report["config"]["arch"] == "my_nets.py:build_net"


def test_own_model_errors_are_one_line(tmp_path: Path) -> None:
    (tmp_path / "nets.py").write_text("def build(*, num_classes, in_channels):\n    return 1\n")
    cases = {
        ("--model", "nets.py:build"): "returned int, not a torch nn.Module",
        ("--model", "nets.py:absent"): "has no callable 'absent'",
        ("--arch", "vgg16", "--model", "nets.py:build"): "give exactly one of --arch",
        ("--arch", "nets.py:build"): "for an import string use --model",
    }
    for args, message in cases.items():
        done = edgeprune("compress", *args, "--structure-epochs", "0", cwd=tmp_path)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().count("\n") == 0 and message in done.stderr, done.stderr
