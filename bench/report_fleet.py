"""The fleet simulation's section of bench/RESULTS.md (results of bench/fleet_sim.py)."""

from __future__ import annotations

from typing import Any

from bench.markdown import table


def _cell(value: Any, digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}" if isinstance(value, int | float) else str(value)


def fleet_section(payload: dict[str, Any]) -> list[str]:
    config = payload.get("config", {})
    env = payload.get("environment", {})
    interval = config.get("interval_s", "?")
    lines = [
        "## Fleet simulation (one API process, loopback)",
        "",
        f"{_cell(config.get('devices'))} virtual devices poll the manifest with `If-None-Match` "
        f"every {interval} s ± {_cell(100 * config.get('jitter', 0))}% (a compressed poll "
        f"interval: {_cell(config.get('offered_polls_per_s'))} polls/s offered) over "
        f"{config.get('connections', '?')} keep-alive connections, for "
        f"{config.get('steady_s', '?')} s of steady state; then a new version is promoted over "
        "HTTP while they keep polling. Staleness: time from the promotion's answer until that "
        "share of the devices was answered with the new version (a device polls once per "
        "interval, so about one interval is the floor). Late: how long after its due time a "
        "poll was sent (waiting for a connection). 1-minute load average "
        f"{env.get('load_avg_1m_at_start', '?')} at the start, "
        f"{env.get('load_avg_1m_at_end', '?')} at the end (2 cores, shared).",
        "",
    ]
    rows = []
    for database, run in payload.get("runs", {}).items():
        steady, promotion = run.get("steady", {}), run.get("promotion", {})
        after = run.get("after_promotion", {})
        rows.append(
            [
                database,
                _cell(steady.get("polls_per_s")),
                _cell(steady.get("p50_ms"), 1),
                _cell(steady.get("p99_ms"), 1),
                _cell(steady.get("late_p99_ms"), 1),
                _cell(steady.get("server_cpu_ms_per_poll"), 3),
                _cell(steady.get("errors", 0) + after.get("errors", 0)),
                _cell(promotion.get("seen_50_s"), 2),
                _cell(promotion.get("seen_99_s"), 2),
                _cell(promotion.get("seen_99_in_intervals"), 2),
                f"{_cell(promotion.get('devices_updated'))}/{_cell(promotion.get('devices'))}",
            ]
        )
    lines += table(
        [
            "database",
            "polls/s",
            "p50 ms",
            "p99 ms",
            "late p99 ms",
            "server CPU ms/poll",
            "errors",
            "50% updated s",
            "99% updated s",
            "99% in intervals",
            "updated",
        ],
        rows,
    )
    return lines
