"""One set of limits: what the API accepts in POST /v1/jobs is what the engine's config
accepts, at each edge of edgeprune.contracts.limits."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edgeprune.contracts.limits import (
    MAX_BATCH_SIZE,
    MAX_CHANNEL_MULTIPLE,
    MAX_EPOCHS,
    METRICS,
)
from pruning.config import CompressConfig, InvalidTarget, Target
from service.api.schemas.jobs import JobCreate


def _api_accepts(**fields: Any) -> bool:
    body = {"model_id": "mdl_x", "dataset_id": "dst_x", "target": {"metric": "flops"}}
    body["target"]["reduction"] = fields.pop("reduction", 0.5)
    body["target"]["metric"] = fields.pop("metric", "flops")
    try:
        JobCreate.model_validate({**body, **fields})
    except ValidationError:
        return False
    return True


def _engine_accepts(**fields: Any) -> bool:
    target = {"metric": fields.pop("metric", "flops"), "reduction": fields.pop("reduction", 0.5)}
    try:
        CompressConfig(target=Target(**target), **fields)
    except (ValueError, InvalidTarget):
        return False
    return True


# finetune_epochs=0 is the one difference, on purpose: the engine runs it (an experiment),
# the API refuses it (a model it publishes is always trained after pruning).
EDGES = [
    *[{"structure_epochs": n} for n in (0, MAX_EPOCHS, MAX_EPOCHS + 1, -1)],
    *[{"finetune_epochs": n} for n in (1, MAX_EPOCHS, MAX_EPOCHS + 1)],
    *[{"batch_size": n} for n in (0, 1, MAX_BATCH_SIZE, MAX_BATCH_SIZE + 1)],
    *[{"channel_multiple": n} for n in (0, 1, MAX_CHANNEL_MULTIPLE, MAX_CHANNEL_MULTIPLE + 1)],
    *[{"reduction": r} for r in (0.0, 1e-6, 0.999999, 1.0)],
    *[{"metric": m} for m in (*METRICS, "latency")],
    *[{"distill_phases": p} for p in ("weights", "both", "structure")],
    # "greedy" is the other deliberate difference: an engine option kept for the benchmark.
    *[{"target_fit": f} for f in ("scale", "cost_aware", "bogus")],
    *[{"quantize": q} for q in ("none", "int8", "int4")],
]


@pytest.mark.parametrize("fields", EDGES, ids=lambda f: "=".join(map(str, *f.items())))
def test_the_api_and_the_engine_draw_the_same_line(fields: dict[str, Any]) -> None:
    assert _api_accepts(**dict(fields)) == _engine_accepts(**dict(fields))
