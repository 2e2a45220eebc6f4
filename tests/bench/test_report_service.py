"""The service throughput section names the connections and reports the ratios to the bare
endpoint: answers/s, p99 and server CPU per answer."""

from __future__ import annotations

from bench.report import service_section


def test_service_section_reports_the_three_ratios() -> None:
    ours = {"ok_per_s": 9000.0, "p99_ms": 15.0, "server_cpu_ms_per_ok": 0.04, "errors": 0}
    bare = {"ok_per_s": 6000.0, "p99_ms": 30.0, "server_cpu_ms_per_ok": 0.08, "errors": 0}
    payload = {
        "load": {"clients": 200, "duration_s": 30.0, "client": "wrk"},
        "environment": {"loadavg_1m_before": 3.5},
        "runs": {"sqlite": {"manifest_304": ours, "bare_304": bare}},
    }
    text = "\n".join(service_section(payload))
    assert "(loopback, 200 connections)" in text and "load average 3.5" in text
    row = "| sqlite | 304 | 9000 | 6000 | 1.50 | 15 | 30 | 0.50 | 0.040 | 0.080 | 0.50 | 0 |"
    assert row in text
