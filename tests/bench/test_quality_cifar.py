"""The `--cifar PATH` path: a CIFAR-10 python-format folder feeds every method."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench import common, quality

TINY = quality.Settings(
    archs=(("vgg11", 0.125),),
    targets=(0.5,),
    seeds=(0,),
    pretrain_epochs=1,
    structure_epochs=1,
    finetune_epochs=1,
    calibration_batches=1,
    batch_size=16,
    train_limit=16,
    test_limit=6,
    device="cpu",
)


def write_cifar(root: Path, per_batch: int = 8) -> None:
    """The real layout: Python-2-style pickles with bytes keys, uint8 rows of 3·32·32."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [b"airplane", b"automobile", b"bird"]
    with (root / "batches.meta").open("wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch}, f, protocol=2)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        record = {
            b"data": rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8),
            b"labels": [i % 3 for i in range(per_batch)],
            b"batch_label": name.encode(),
        }
        with (root / name).open("wb") as f:
            pickle.dump(record, f, protocol=2)


def test_load_task_reads_a_cifar_folder_and_applies_the_limits(tmp_path: Path) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    task = quality.load_task(str(tmp_path), seed=0, settings=TINY)
    assert task.input_shape == (3, 32, 32)
    assert task.num_classes == 3
    assert task.tensors.x_train.shape == (16, 3, 32, 32)  # 40 images, limited to 16
    assert task.tensors.x_test.shape == (6, 3, 32, 32)  # 8 images, limited to 6
    assert task.augment  # photos get shift-and-mirror; digits do not


def test_cli_runs_every_method_on_a_cifar_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_cifar(tmp_path / "cifar-10-batches-py")
    monkeypatch.setattr(quality, "QUICK", TINY)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    quality.main(["--quick", "--no-digits", "--cifar", str(tmp_path), "--name", "q"])

    payload = json.loads((tmp_path / "results" / "q.json").read_text())
    assert payload["datasets"] == [str(tmp_path)]
    runs = payload["runs"]
    assert sorted({r["method"] for r in runs}) == sorted(quality.METHODS)
    for run in runs:
        assert run["dataset"] == str(tmp_path) and run["epochs"] == 2
        if run["method"] != "unpruned":
            assert abs(run["flops_reduction"] - 0.5) <= 0.01, run
    ours = next(r for r in runs if r["method"] == "ours")
    scratch = next(r for r in runs if r["method"] == "scratch")
    assert (ours["flops"], ours["params"]) == (scratch["flops"], scratch["params"])
    # Each row names the widths it ended with: scratch retrains ours' structure.
    assert ours["conv_widths"] == scratch["conv_widths"]
    unpruned = next(r for r in runs if r["method"] == "unpruned")
    assert sum(ours["conv_widths"]) < sum(unpruned["conv_widths"])


def test_distilled_baselines_prune_alike_and_fine_tune_against_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pfec_distill and tp_taylor_distill cut the same channels as pfec and tp_taylor; only
    their fine-tuning also follows the checkpoint, on every step."""
    write_cifar(tmp_path / "cifar-10-batches-py")
    monkeypatch.setattr(quality, "QUICK", TINY)
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    teachers: list[object] = []
    real_loss = quality.Distillation.loss

    def counting_loss(self: quality.Distillation, *args: Any) -> Any:
        teachers.append(self.teacher)
        return real_loss(self, *args)

    monkeypatch.setattr(quality.Distillation, "loss", counting_loss)
    methods = ["pfec", "pfec_distill", "tp_taylor", "tp_taylor_distill"]
    quality.main(
        ["--quick", "--no-digits", "--cifar", str(tmp_path), "--name", "q", "--methods", *methods]
    )
    runs = {
        r["method"]: r for r in json.loads((tmp_path / "results" / "q.json").read_text())["runs"]
    }
    assert set(runs) == {"ours", *methods}
    for plain in ("pfec", "tp_taylor"):
        twin = runs[f"{plain}_distill"]
        assert (twin["flops"], twin["params"]) == (runs[plain]["flops"], runs[plain]["params"])
        assert twin["conv_widths"] == runs[plain]["conv_widths"]
    # Two epochs of 16 samples in batches of 16, for each distilled baseline; ours is plain.
    assert len(teachers) == 2 * 2


def test_the_results_file_is_written_after_every_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of hours stopped early keeps the seeds it finished: the file is rewritten after
    each one, `complete` false until the last."""
    monkeypatch.setattr(quality, "QUICK", replace(TINY, seeds=(0, 1)))
    monkeypatch.setattr(common, "RESULTS", tmp_path / "results")
    seen: list[dict[str, Any]] = []

    def fake_seed(
        dataset: str, arch: str, width: float, seed: int, settings: Any, tmp: Path
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if seed == 1:  # the first seed's rows are already on disk
            seen.append(json.loads((tmp_path / "results" / "q.json").read_text()))
        return {"seed": seed}, [{"method": "ours", "seed": seed}]

    monkeypatch.setattr(quality, "run_seed", fake_seed)
    quality.main(["--quick", "--name", "q"])
    assert [r["seed"] for r in seen[0]["runs"]] == [0] and seen[0]["complete"] is False
    final = json.loads((tmp_path / "results" / "q.json").read_text())
    assert [r["seed"] for r in final["runs"]] == [0, 1] and final["complete"] is True
