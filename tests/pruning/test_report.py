"""The report's unit roles and its two plots (integer epoch ticks, named phases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pruning.models.registry import ModelSpec, build_model
from pruning.network.units import PrunableModel
from pruning.report import history_figure, plot_channels, plot_history, unit_roles, with_roles


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.down = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.unused = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.down(self.stem(x)))
        return self.fc(x.mean((2, 3)))


def test_roles_name_position_kind_and_feature_map() -> None:
    model = Tiny().train()
    running = model.bn.running_mean
    assert running is not None
    stats = running.clone()
    roles = unit_roles(model, ["stem", "down", "unused", "fc", "missing"], (1, 16, 12))
    # Height × width of each conv's output; the list's order is the position.
    assert roles == ["conv 1 · 16×12", "conv 2 · 8×6", "conv 3", "linear 4", "unit 5"]
    assert model.training and model.bn.training  # modes restored
    assert torch.equal(running, stats)  # the pass ran in eval mode
    assert not model.stem._forward_hooks  # hooks removed


def test_zoo_units_get_roles_that_follow_the_resolution() -> None:
    model = build_model(ModelSpec("resnet20", width_mult=0.5))
    assert isinstance(model, PrunableModel)
    names = [u.name for u in model.prunable_units()]
    roles = unit_roles(model, names, (3, 32, 32))
    assert roles[0] == "conv 1 · 32×32"
    assert roles[-1] == f"conv {len(names)} · 8×8"
    sides = [int(role.rsplit("×", 1)[1]) for role in roles]
    assert sides == sorted(sides, reverse=True) and {32, 16, 8} == set(sides)


def test_with_roles_keeps_the_unit_fields() -> None:
    units = [{"name": "stem", "channels_before": 4, "channels_after": 2}]
    assert with_roles(units, Tiny(), (1, 8, 8)) == [{**units[0], "role": "conv 1 · 8×8"}]
    assert "role" not in units[0]


def _report(roles: bool) -> dict[str, Any]:
    history: list[dict[str, Any]] = [
        {"phase": phase, "epoch": epoch, "loss": 1.0 / epoch, "accuracy": 0.5, "flops": 2e6}
        for phase, epochs in (("structure_learning", 3), ("weight_learning", 2))
        for epoch in range(1, epochs + 1)
    ]
    units: list[dict[str, Any]] = [
        {"name": "features.0", "channels_before": 8, "channels_after": 5},
        {"name": "features.3", "channels_before": 16, "channels_after": 9},
    ]
    if roles:
        units = [{**u, "role": f"conv {i} · 32×32"} for i, u in enumerate(units, start=1)]
    return {
        "target": {"metric": "flops", "reduction": 0.5},
        "achieved": {"flops": 0.5, "params": 0.4, "channels": 0.4},
        "baseline": {"flops": 4e6},
        "units": units,
        "history": history,
        "config": {"arch": "vgg11"},
    }


def test_history_ticks_are_whole_epochs_labelled_by_phase() -> None:
    import matplotlib.pyplot as plt

    fig = history_figure(_report(roles=True))
    try:
        for ax in fig.axes:
            assert list(ax.get_xticks()) == [1, 2, 3, 4, 5]
            assert [t.get_text() for t in ax.get_xticklabels()] == ["S1", "S2", "S3", "W1", "W2"]
            names = [t.get_text() for t in ax.texts]
            assert names == ["structure learning", "weight learning"]
            dashed = [np.asarray(line.get_xdata()).tolist() for line in ax.lines]
            assert [3.5, 3.5] in dashed  # the divider between S3 and W1
    finally:
        plt.close(fig)


def test_plots_are_written_for_new_and_old_reports(tmp_path: Path) -> None:
    for roles in (True, False):  # reports written before roles existed still plot
        report = _report(roles)
        plot_channels(report, tmp_path / f"channels-{roles}.png")
        plot_history(report, tmp_path / f"history-{roles}.png")
        assert (tmp_path / f"channels-{roles}.png").stat().st_size > 1000
        assert (tmp_path / f"history-{roles}.png").stat().st_size > 1000
