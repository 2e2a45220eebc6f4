"""A worker reports what it can build: the zoo and the installed entry points that import."""

from __future__ import annotations

from sqlalchemy import select

from infra.store.architectures import ZOO_ARCHITECTURES
from infra.store.models import Architecture
from pruning.models.registry import available_models, buildable_architectures
from worker.architectures import report_architectures
from worker.context import WorkerContext


def test_the_service_zoo_list_matches_the_engine() -> None:
    assert sorted(ZOO_ARCHITECTURES) == available_models()


def test_a_worker_reports_the_zoo_and_its_working_entry_points(ctx: WorkerContext) -> None:
    found = report_architectures(ctx.settings, "gpu@test")
    installed = {name for name, source in found if source == "installed"}
    # The test package's six networks; its broken entry point is logged and left out.
    assert installed == {
        "squeezenet_fire", "densenet_block", "shufflenet_unit", "se_resnet", "mbconv_se",
        "grouped_cnn",
    }  # fmt: skip
    assert found == buildable_architectures()
    with ctx.sessions() as session:
        rows = {r.name: (r.source, r.reported_by) for r in session.scalars(select(Architecture))}
    assert rows["se_resnet"] == ("installed", "gpu@test")
    assert rows["vgg11"] == ("zoo", "gpu@test")
    assert "broken_net" not in rows
