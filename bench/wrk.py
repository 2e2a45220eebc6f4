"""Drive a server with `wrk` (Debian package `wrk`): a C load generator that saturates a bare
ASGI endpoint on one thread, where the Python one (bench/loadgen.py) tops out first.

Each request carries the next token of a list (round robin per wrk thread) and, for
conditional polls, `If-None-Match`. A Lua `done` hook prints one JSON line: requests,
socket errors, status counts and latency percentiles, which `run` turns into the same
summary shape as `LoadStats.summary()`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

SCRIPT = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  counts = {}
  local etag = args[2]
  reqs = {}
  for token in io.lines(args[1]) do
    local headers = { ["Authorization"] = "Bearer " .. token }
    if etag ~= nil and etag ~= "-" then headers["If-None-Match"] = etag end
    table.insert(reqs, wrk.format("GET", nil, headers))
  end
  n = #reqs
  i = math.random(n) - 1
end

function request()
  i = (i % n) + 1
  return reqs[i]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local statuses = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("counts")) do
      statuses[tostring(status)] = (statuses[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(statuses) do
    table.insert(parts, string.format('"%s": %d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"mean_us": %f, "max_us": %d, "statuses": {%s}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.mean, latency.max, table.concat(parts, ", ")))
end
"""


def available() -> bool:
    return shutil.which("wrk") is not None


def run(
    url: str,
    tokens: Sequence[str],
    etag: str | None,
    *,
    connections: int,
    duration_s: float,
    expected: frozenset[int],
    threads: int = 1,
    timeout_s: float = 10.0,
) -> dict[str, Any]:
    """One wrk run against `url` (the full URL of the polled path)."""
    with tempfile.TemporaryDirectory(prefix="edgeprune-wrk-") as tmp:
        script, token_file = Path(tmp) / "poll.lua", Path(tmp) / "tokens.txt"
        script.write_text(SCRIPT)
        token_file.write_text("\n".join(tokens) + "\n")
        seconds = f"{max(1, round(duration_s))}s"
        argv = ["wrk", "-t", str(threads), "-c", str(connections), "-d", seconds]
        argv += ["--timeout", f"{max(1, round(timeout_s))}s", "-s", str(script), url]
        argv += ["--", str(token_file), etag or "-"]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    raw = json.loads(line.removeprefix("WRKJSON "))
    statuses = {k: int(v) for k, v in sorted(raw["statuses"].items())}
    unexpected = sum(v for k, v in statuses.items() if int(k) not in expected)
    socket_errors = raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    duration = raw["duration_us"] / 1e6
    ok = raw["requests"] - unexpected - raw["timeout"]
    return {
        "clients": connections,
        "duration_s": round(duration, 3),
        "requests": raw["requests"],
        "ok": ok,
        "ok_per_s": round(ok / duration, 1) if duration else 0.0,
        "statuses": statuses,
        "errors": unexpected + socket_errors,
        "error_samples": [
            f"{name}: {raw[name]}" for name in ("connect", "read", "write", "timeout") if raw[name]
        ]
        + ([f"{unexpected} answers outside {sorted(expected)}"] if unexpected else []),
        "p50_ms": round(raw["p50_us"] / 1000, 3),
        "p95_ms": round(raw["p95_us"] / 1000, 3),
        "p99_ms": round(raw["p99_us"] / 1000, 3),
        "mean_ms": round(raw["mean_us"] / 1000, 3),
        "max_ms": round(raw["max_us"] / 1000, 3),
    }
