"""The reduction limits an upload's inspection records are the engine's own refusal line:
just past one the run is refused before training, at it the run starts."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edgeprune.contracts.limits import MAX_CHANNEL_MULTIPLE, reachable_limit
from pruning.config import CompressConfig, InvalidTarget, RunHooks, Target
from pruning.engine import CompressionRun
from pruning.engine.limits import reduction_limits
from tests.pruning.engine_helpers import random_task, tiny_model, tiny_spec


@pytest.mark.parametrize("arch", ["vgg11", "resnet20", "mobilenet"])
def test_the_recorded_limits_are_where_the_engine_starts_refusing(arch: str) -> None:
    limits = reduction_limits(tiny_model(arch), (1, 32, 32))
    assert {len(v) for v in limits.values()} == {MAX_CHANNEL_MULTIPLE}
    task = random_task()
    for metric, multiple in (("flops", 1), ("params", 8), ("channels", 4)):
        limit = reachable_limit(limits, metric, multiple)
        assert limit is not None and 0.3 < limit < 1
        past = CompressConfig(
            target=Target(metric, limit + 0.002),  # type: ignore[arg-type]
            channel_multiple=multiple, device="cpu", structure_epochs=1, finetune_epochs=1,
        )  # fmt: skip
        with pytest.raises(InvalidTarget, match="out of reach"):
            CompressionRun(tiny_model(arch), tiny_spec(arch), task, past, RunHooks())
        at = replace(past, target=Target(metric, limit))  # type: ignore[arg-type]
        run = CompressionRun(tiny_model(arch), tiny_spec(arch), task, at, RunHooks())
        assert run.reachable() == limit


def test_a_wider_multiple_raises_the_floors_and_lowers_the_limit() -> None:
    limits = reduction_limits(tiny_model("vgg11"), (1, 32, 32))
    # vgg11 x0.25 has 16-128 channel units: at multiple 64 every unit keeps at least 64.
    assert limits["channels"][63] < limits["channels"][7] < limits["channels"][0]
    assert limits["flops"][63] < limits["flops"][0]


def test_reading_limits_tolerates_what_an_older_row_holds() -> None:
    assert reachable_limit(None, "flops", 1) is None
    assert reachable_limit({"flops": [0.9]}, "params", 1) is None
    assert reachable_limit({"flops": [0.9]}, "flops", 2) is None
    assert reachable_limit({"flops": ["x"]}, "flops", 1) is None
    assert reachable_limit({"flops": [0.9, 0.8]}, "flops", 2) == 0.8
