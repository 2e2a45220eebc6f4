"""A store as the dashboard finds it after a few days of use, written with the persistence
layer's own functions (never through the API): one job in every state, a succeeded job with a
realistic report and artifacts, a deployment with two versions and a device that reported."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from infra.storage import ArtifactStore
from infra.store import deployments as deployment_store
from infra.store import devices as device_store
from infra.store import job_events, uploads
from infra.store import jobs as job_store
from infra.store.models import utcnow

UNITS = ["features.0", "features.4", "features.8", "features.11"]
CAPACITY = [8, 16, 32, 32]
ROLES = ["conv 1 · 32×32", "conv 2 · 16×16", "conv 3 · 8×8", "conv 4 · 8×8"]


@dataclass(frozen=True)
class Seeded:
    model_id: str
    dataset_id: str
    queued: str
    running: str
    succeeded: str
    older_succeeded: str
    failed: str
    canceled: str
    device_id: str


def report(reduction: float = 0.5, *, roles: bool = True) -> dict[str, Any]:
    """A report.json shaped like pruning.report.build_report's output; without `roles`, as
    reports were written before units carried one."""
    allocations = [[6, 10, 20, 16], [7, 9, 22, 14], [7, 8, 23, 14]]
    history: list[dict[str, Any]] = [
        {
            "phase": "structure_learning",
            "epoch": i + 1,
            "train_loss": 1.2 - 0.2 * i,
            "train_accuracy": 0.6 + 0.05 * i,
            "loss": 1.0 - 0.2 * i,
            "accuracy": 0.7 + 0.05 * i,
            "flops": 1_300_000.0 - 50_000.0 * i,
            "params": 80_000.0,
            "active": dict(zip(UNITS, active, strict=True)),
            "allocation": dict(zip(UNITS, active, strict=True)),
            "proposed": dict(
                zip(UNITS, [a + (1 if u == 0 else 0) for u, a in enumerate(active)], strict=True)
            ),
            "learned_moves": 2,
            "fit_moved": 1,
            "reverted": 0,
        }
        for i, active in enumerate(allocations)
    ]
    history += [
        {
            "phase": "weight_learning",
            "epoch": i + 1,
            "train_loss": 0.5 - 0.1 * i,
            "train_accuracy": 0.85 + 0.02 * i,
            "loss": 0.45 - 0.1 * i,
            "accuracy": 0.88 + 0.02 * i,
            "flops": 1_200_000.0,
            "params": 75_000.0,
        }
        for i in range(2)
    ]
    units: list[dict[str, Any]] = [
        {"name": name, "channels_before": before, "channels_after": after}
        for name, before, after in zip(UNITS, CAPACITY, allocations[-1], strict=True)
    ]
    if roles:
        units = [{**unit, "role": role} for unit, role in zip(units, ROLES, strict=True)]
    return {
        "target": {"metric": "flops", "reduction": reduction, "reachable": 0.912},
        "achieved": {"flops": 0.503, "params": 0.487, "channels": 0.47},
        "baseline": {"flops": 2_430_000, "params": 146_000, "accuracy": 0.91, "loss": 0.31},
        "pruned": {"flops": 1_208_000, "params": 74_800, "accuracy": 0.905, "loss": 0.33},
        "units": units,
        "history": history,
        "timings": {"calibrating": 0.5, "structure_learning": 1.8, "weight_learning": 1.3},
        "checks": {"masked_vs_pruned_max_abs_diff": 2.9e-6, "onnx_vs_torch_max_abs_diff": 4.3e-6},
        "config": {
            "arch": "vgg11",
            "input_shape": [1, 32, 32],
            "classes": [str(i) for i in range(10)],
        },
        "notes": ["FLOPs are multiply-accumulates (MACs) of conv and linear layers, per sample."],
        "int8": {
            "published": True,
            "accuracy": 0.9,
            "fp32_accuracy": 0.905,
            "drop": 0.005,
            "speed": {"int8_over_fp32": 1.84},
            "plan": "all_int8",
            "candidates": [{"plan": "narrow_convs_fp32"}, {"plan": "all_int8"}],
        },
    }


def _model_and_dataset(session: Session, storage: ArtifactStore) -> tuple[str, str]:
    sha, size = storage.put_bytes(b"PK\x03\x04 a checkpoint stand-in")
    model = uploads.add_model(
        session, name="digits-vgg", arch="vgg11", num_classes=10, input_shape=[1, 32, 32],
        filename="ck.pt", format="pt", sha256=sha, size=size,
    )  # fmt: skip
    uploads.mark_model_ready(session, model.id, params=146_000, flops=2_430_000)
    data_sha, data_size = storage.put_bytes(b"npz stand-in")
    dataset = uploads.add_dataset(
        session, name="digits", filename="digits.npz", format="npz", sha256=data_sha,
        size=data_size, samples=1797, classes=[str(i) for i in range(10)], input_shape=[1, 8, 8],
    )  # fmt: skip
    return model.id, dataset.id


def _job(session: Session, model_id: str, dataset_id: str, created_at: datetime) -> str:
    config = {
        "target": {"metric": "flops", "reduction": 0.5},
        "structure_epochs": 3,
        "finetune_epochs": 2,
        "batch_size": 64,
        "lr": 0.01,
        "seed": 0,
    }
    return job_store.create_job(
        session, model_id=model_id, dataset_id=dataset_id, config=config, created_at=created_at
    ).id


def _epoch_events(session: Session, job_id: str, lease: int) -> None:
    rep = report()
    for record in rep["history"]:
        phase = record["phase"]
        job_store.update_progress(session, job_id, lease, phase=phase, progress=0.5)
        metrics = {k: v for k, v in record.items() if isinstance(v, float)}
        job_events.append_event(
            session,
            job_id,
            "epoch",
            {
                "phase": phase, "progress": 0.5, "epoch": record["epoch"], "epochs": 3,
                "step": None, "steps": None, "metrics": metrics,
                "channels": record.get("active"), "message": "epoch done",
            },
        )  # fmt: skip


def _succeed(session: Session, storage: ArtifactStore, job_id: str, *, roles: bool) -> None:
    claim = job_store.mark_running(session, job_id, "test-worker")
    assert claim.lease is not None
    _epoch_events(session, job_id, claim.lease)
    rep = report(roles=roles)
    published = {
        "model.onnx": (b"onnx" * 300, "application/octet-stream"),
        "baseline.onnx": (b"base" * 600, "application/octet-stream"),
        "report.json": (json.dumps(rep).encode(), "application/json"),
    }
    for name, (data, content_type) in published.items():
        sha, size = storage.put_bytes(data)
        job_store.record_artifact(
            session, job_id, name, sha256=sha, size=size, content_type=content_type
        )
    summary = {
        "target": rep["target"],
        "achieved": rep["achieved"],
        "accuracy_before": rep["baseline"]["accuracy"],
        "accuracy_after": rep["pruned"]["accuracy"],
        "flops_before": rep["baseline"]["flops"],
        "flops_after": rep["pruned"]["flops"],
        "params_before": rep["baseline"]["params"],
        "params_after": rep["pruned"]["params"],
    }
    assert job_store.mark_succeeded(session, job_id, claim.lease, summary)


def seed_store(sessions: sessionmaker[Session], storage: ArtifactStore) -> Seeded:
    with sessions.begin() as session:
        model_id, dataset_id = _model_and_dataset(session, storage)
        names = ("older_succeeded", "failed", "canceled", "succeeded", "running", "queued")
        # Distinct creation times: the list is newest first.
        start = utcnow().replace(microsecond=0, second=0)
        ids = {
            name: _job(session, model_id, dataset_id, start + timedelta(seconds=offset))
            for offset, name in enumerate(names)
        }
        # The older job's report predates unit roles: the page must still draw it.
        _succeed(session, storage, ids["older_succeeded"], roles=False)
        _succeed(session, storage, ids["succeeded"], roles=True)

        claim = job_store.mark_running(session, ids["failed"], "test-worker")
        assert claim.lease is not None
        job_store.mark_failed(
            session, ids["failed"], claim.lease, "DataError", "digits.npz: missing array(s) y"
        )
        claim = job_store.mark_running(session, ids["running"], "test-worker")
        assert claim.lease is not None
        _epoch_events(session, ids["running"], claim.lease)
        assert job_store.request_cancel(session, ids["canceled"]) == job_store.CANCELED

        deployment_store.promote(session, "warehouse", ids["older_succeeded"])
        deployment_store.promote(session, "warehouse", ids["succeeded"])
        device = device_store.register(session, "gate-3", "warehouse").device
        device_store.record_report(
            session,
            device,
            status=device_store.OK,
            version=2,
            data={
                "status": "ok",
                "version": 2,
                "latency": {"p50_ms": 1.8, "p95_ms": 2.4, "p99_ms": 3.0},
                "speedup": 1.9,
                "throughput_per_s": 540.0,
            },
        )
        return Seeded(model_id=model_id, dataset_id=dataset_id, device_id=device.id, **ids)
