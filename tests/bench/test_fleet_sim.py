"""A small fleet simulation end to end: the real API in a child process, devices registered
through the store, polls over the simulator's own HTTP client, a promotion mid-run."""

from __future__ import annotations

import pytest

from bench import fleet_sim
from bench.report_fleet import fleet_section

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_device_polls_without_error_and_gets_the_promoted_version() -> None:
    config = fleet_sim.Config(
        devices=40,
        interval_s=0.5,
        jitter=0.2,
        connections=4,
        steady_s=1.5,
        after_s=2.0,
        postgres=None,
    )
    payload = fleet_sim.run(config)
    run = payload["runs"]["sqlite"]
    assert run["warmup"]["statuses"] == {"200": 40} and run["warmup"]["errors"] == 0
    assert run["steady"]["errors"] == 0 and run["steady"]["statuses"].keys() == {"304"}
    assert run["after_promotion"]["errors"] == 0
    promotion = run["promotion"]
    assert promotion["version"] == 2
    assert promotion["devices_updated"] == promotion["devices"] == 40
    assert promotion["seen_99_s"] is not None and promotion["seen_100_s"] is not None
    text = "\n".join(fleet_section(payload))
    assert "| sqlite |" in text and "40/40" in text
