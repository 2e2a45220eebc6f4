"""The worker's job summary and the engine's report have the keys of
edgeprune.contracts.report, and the manifest reads the summary by those keys."""

from __future__ import annotations

from edgeprune.contracts.edge import Preprocessing
from edgeprune.contracts.report import Int8Headline, JobSummary, Report
from pruning.config import CompressConfig, Target
from pruning.report import build_report
from service.api import crud, manifest_body
from service.api.schemas.deployments import Manifest
from worker.summary import summarize


def _keys(typed_dict: type) -> set[str]:
    return set(typed_dict.__required_keys__ | typed_dict.__optional_keys__)  # type: ignore[attr-defined]


def _report() -> Report:
    report = build_report(
        config=CompressConfig(target=Target("flops", 0.5)),
        arch="resnet20",
        data_source="builtin:digits",
        input_shape=(1, 8, 8),
        classes=["0", "1"],
        baseline={"accuracy": 0.9, "loss": 0.3, "flops": 1000, "params": 100},
        pruned={"accuracy": 0.88, "loss": 0.35, "flops": 480, "params": 60},
        units=[{"name": "conv1", "channels_before": 16, "channels_after": 8}],
        history=[],
        timings={"calibrating": 1.0},
        checks={"onnx_vs_torch_max_abs_diff": 0.0},
        head_reinitialised=False,
    )
    report["data"] = {"mean": [0.5], "std": [0.25], "value_scale": 1 / 16, "classes": ["0", "1"]}
    report["int8"] = {"published": False, "accuracy": 0.7, "fp32_accuracy": 0.88, "drop": 0.18,
                      "max_drop": 0.01, "reason": "too inaccurate",
                      "speed": {"int8_over_fp32": 1.8}}  # fmt: skip
    return report


def test_the_report_has_the_contracts_top_level_keys() -> None:
    report = _report()
    assert Report.__required_keys__ <= set(report) <= _keys(Report)


def test_the_summary_has_every_key_of_the_contract() -> None:
    summary = summarize(_report())
    assert set(summary) == _keys(JobSummary)
    assert summary["preprocessing"] is not None and summary["int8"] is not None
    assert set(summary["preprocessing"]) == _keys(Preprocessing)
    assert set(summary["int8"]) == _keys(Int8Headline)
    assert summary["int8"].get("speed_over_fp32") == 1.8
    assert (summary.get("flops_after"), summary.get("accuracy_before")) == (480, 0.9)


def test_the_manifest_takes_its_numbers_from_the_summary() -> None:
    summary = summarize(_report())
    row = crud.ManifestRow(
        deployment="cams", version=1, job_id="job_1", model_sha256="a" * 64, model_size=10,
        baseline_sha256=None, int8_sha256="b" * 64, int8_size=5, input_shape=[1, 8, 8],
        classes=["0", "1"], summary=dict(summary),
    )  # fmt: skip
    body = Manifest.model_validate_json(manifest_body.render(row, "").body)
    assert (body.flops, body.params) == (480, 60)
    assert body.preprocessing is not None and body.preprocessing.std == [0.25]
    assert [(v.name, v.accuracy) for v in body.variants] == [("fp32", 0.88), ("int8", 0.7)]
    assert [v.speed_over_fp32 for v in body.variants] == [None, 1.8]
