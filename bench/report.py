"""Render bench/RESULTS.md (tables, plots, environments, headline) from bench/results/*.json.

Every number in the markdown is read from the JSON files; nothing is typed in by hand.

    python -m bench.report [--results DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.aggregate import Cell, quality_cells
from bench.common import RESULTS
from bench.markdown import table
from bench.plots import accuracy_vs_flops, speedup_vs_flops_ratio
from bench.report_fleet import fleet_section
from bench.report_int8 import (
    int8_headline,
    int8_layers_section,
    int8_payloads,
    int8_profile_section,
    int8_section,
)
from bench.report_quality import quality_headline, quality_payloads, quality_section


def load_results(directory: Path) -> dict[str, dict[str, Any]]:
    """Every results file that holds a JSON object, by name."""
    found = {}
    for path in sorted(directory.glob("*.json")):
        payload = json.loads(path.read_text())
        if isinstance(payload, dict):
            found[path.stem] = payload
    return found


def speedup_section(payload: dict[str, Any], plot: Path | None, out_dir: Path) -> list[str]:
    rows = payload["results"]
    lines = [
        "## Edge speedup (ONNX Runtime, CPU)",
        "",
        "Median latency of alternating runs of the baseline and the pruned network. "
        '"widths ×" is `channel_multiple`: 1 keeps the paper\'s per-channel widths, 8 keeps '
        "every pruned width a multiple of 8.",
        "",
    ]
    lines += table(
        [
            "arch",
            "widths ×",
            "FLOPs red. %",
            "FLOPs ratio",
            "batch",
            "threads",
            "baseline ms",
            "pruned ms",
            "speedup",
            "speedup / FLOPs ratio",
        ],
        [
            [
                str(r["arch"]),
                str(r.get("channel_multiple", 1)),
                f"{100 * r['achieved_flops_reduction']:.1f}",
                f"{r['flops_ratio']:.2f}",
                str(r["batch"]),
                str(r["threads"]),
                f"{r['baseline_p50_ms']:.2f}",
                f"{r['pruned_p50_ms']:.2f}",
                f"{r['speedup']:.2f}",
                f"{r['speedup_over_flops_ratio']:.2f}",
            ]
            for r in rows
        ],
    )
    if plot is not None:
        lines += ["", f"![ONNX speedup vs FLOPs ratio]({os.path.relpath(plot, out_dir)})"]
    return lines


def overhead_section(payload: dict[str, Any]) -> list[str]:
    lines = ["## Structure-learning overhead", "", "Median step time, alternating steps.", ""]
    lines += table(
        ["arch", "width", "batch", "plain step ms", "structure step ms", "ratio"],
        [
            [
                str(r["arch"]),
                f"{r['width_mult']:g}",
                str(r["batch"]),
                f"{r['plain_step_ms_median']:.1f}",
                f"{r['structure_step_ms_median']:.1f}",
                f"{r['ratio']:.2f}",
            ]
            for r in payload["results"]
        ],
    )
    return lines


def _env_cell(env: dict[str, Any], key: str) -> str:
    value = env.get(key, "?")
    # cpu_features is a list; older files do not record it ("?").
    return (" ".join(value) or "none") if isinstance(value, list) else str(value)


def environment_section(results: dict[str, dict[str, Any]]) -> list[str]:
    keys = [
        "date",
        "cpu",
        "cpu_features",
        "cpu_count",
        "torch_threads",
        "load_avg_1m_at_start",
        "python",
        "torch",
        "onnxruntime",
        "cuda",
    ]
    rows = []
    for name, payload in results.items():
        env = payload.get("environment", {})
        rows.append([name, str(payload.get("quick", "?"))] + [_env_cell(env, k) for k in keys])
    return ["## Environment of each run", "", *table(["results", "quick", *keys], rows)]


def _speedup_headline(payload: dict[str, Any]) -> list[str]:
    rows = payload["results"]
    if not rows:
        return []
    said = []
    # One thread is the setting least disturbed by other jobs on a shared CPU.
    single = [r for r in rows if r["threads"] == 1] or rows
    efficiency = sorted(r["speedup_over_flops_ratio"] for r in single)
    parts = []
    for arch, multiple in dict.fromkeys((r["arch"], r.get("channel_multiple", 1)) for r in single):
        mine = [
            r
            for r in single
            if r["arch"] == arch and r.get("channel_multiple", 1) == multiple and r["batch"] == 1
        ] or [r for r in single if r["arch"] == arch]
        top = max(mine, key=lambda r: r["flops_ratio"])
        parts.append(
            f"{arch} (widths ×{multiple}) {top['speedup']:.2f}× at FLOPs ratio "
            f"{top['flops_ratio']:.2f} (batch {top['batch']})"
        )
    said.append(
        "Edge speedup (ONNX Runtime, 1 thread): "
        + "; ".join(parts)
        + f". Across batch sizes the pruned nets realise "
        f"{efficiency[0]:.0%}–{efficiency[-1]:.0%} of the FLOPs ratio "
        f"(median {statistics.median(efficiency):.0%})."
    )
    slower = [r for r in rows if r["speedup"] < 1.0]
    if slower:
        said.append(
            "The pruned network was *slower* than the baseline in "
            + "; ".join(
                f"{r['arch']} (widths ×{r.get('channel_multiple', 1)}) at "
                f"{100 * r['achieved_flops_reduction']:.0f} %, batch "
                f"{r['batch']}, {r['threads']} thread(s) ({r['speedup']:.2f}×)"
                for r in slower
            )
            + "."
        )
    load = payload.get("environment", {}).get("load_avg_1m_at_start")
    if load is not None:
        said.append(
            f"These timings ran on a shared CPU (1-minute load average {load} at start on "
            f"{payload.get('environment', {}).get('cpu_count', '?')} cores), so the 2-thread "
            f"rows in particular scatter."
        )
    return said


def headline(results: dict[str, dict[str, Any]]) -> list[str]:
    """Plain sentences computed from the numbers, losses included."""
    said: list[str] = []
    said += quality_headline(results)
    if "onnx_speedup" in results:
        said += _speedup_headline(results["onnx_speedup"])
    said += int8_headline(results)
    if "structure_overhead" in results:
        rows = results["structure_overhead"]["results"]
        if rows:
            ratios = [r["ratio"] for r in rows]
            load = (
                results["structure_overhead"]
                .get("environment", {})
                .get("load_avg_1m_at_start", "?")
            )
            said.append(
                f"Structure learning costs {min(ratios):.2f}–{max(ratios):.2f}× a plain "
                f"training step (median step times; load average {load} at start)."
            )
    return ["## Headline", "", *(said or ["No results yet."])]


def _cpu_ratio(ours: dict[str, Any], bare: dict[str, Any]) -> str:
    a, b = ours.get("server_cpu_ms_per_ok"), bare.get("server_cpu_ms_per_ok")
    return f"{a / b:.2f}" if a and b else "—"


def service_section(payload: dict[str, Any]) -> list[str]:
    """Manifest polls against a bare ASGI endpoint in the same run, and job submissions."""
    load = payload.get("load", {})
    lines = [
        f"## Service throughput (loopback, {load.get('clients', '?')} connections)",
        "",
        f"{load.get('clients', '?')} concurrent clients poll for {load.get('duration_s', '?')} s "
        "(closed loop, no think time) against the real API under uvicorn and, in the same run, "
        "a bare ASGI endpoint answering a fixed JSON with an ETag. Server CPU per answered "
        "request is the steadier figure on a shared machine. "
        f"Load generator: {load.get('client', '?')}; 1-minute load average "
        f"{payload.get('environment', {}).get('loadavg_1m_before', '?')} at the start.",
        "",
    ]
    rows = []
    for backend, run in payload.get("runs", {}).items():
        for kind in ("304", "200"):
            ours, bare = run.get(f"manifest_{kind}"), run.get(f"bare_{kind}")
            if not ours or not bare:
                continue
            rows.append(
                [
                    backend,
                    kind,
                    f"{ours['ok_per_s']:.0f}",
                    f"{bare['ok_per_s']:.0f}",
                    f"{ours['ok_per_s'] / bare['ok_per_s']:.2f}" if bare["ok_per_s"] else "—",
                    f"{ours['p99_ms']:.0f}",
                    f"{bare['p99_ms']:.0f}",
                    f"{ours['p99_ms'] / bare['p99_ms']:.2f}" if bare["p99_ms"] else "—",
                    f"{ours['server_cpu_ms_per_ok']:.3f}",
                    f"{bare['server_cpu_ms_per_ok']:.3f}",
                    _cpu_ratio(ours, bare),
                    str(ours["errors"]),
                ]
            )
    lines += table(
        [
            "database",
            "manifest answer",
            "ours req/s",
            "bare req/s",
            "req/s ratio",
            "ours p99 ms",
            "bare p99 ms",
            "p99 ratio",
            "ours CPU ms/req",
            "bare CPU ms/req",
            "CPU ratio",
            "errors",
        ],
        rows,
    )
    jobs = [
        [backend, mode, str(stats["accepted"]), f"{stats['p50_ms']:.0f}", f"{stats['p99_ms']:.0f}"]
        for backend, run in payload.get("runs", {}).items()
        for mode, stats in run.get("jobs", {}).items()
    ]
    if jobs:
        lines += ["", "Job submission latency (`POST /v1/jobs`):", ""]
        lines += table(["database", "submissions", "accepted", "p50 ms", "p99 ms"], jobs)
    return lines


def epoch_overhead_section(payload: dict[str, Any]) -> list[str]:
    rows = payload["results"]
    load = payload["environment"].get("load_avg_1m_at_start")
    lines = [
        "## A training epoch of the engine against a plain torch loop (CPU)",
        "",
        "`python -m bench.epoch_overhead`: the same network and batches (builtin:photos), the "
        "engine's epoch (CPU kernel guard, precision plan, progress callback, cancel and "
        "divergence checks; structure learning adds the gates and the saliency update) against "
        "forward, backward and SGD step alone. Epochs alternate; medians of "
        f"{rows[0]['epochs_timed']} (1 torch thread; load average {load} at start). Goal: ≤ 1.1×.",
        "",
    ]
    return lines + table(
        ["arch", "width", "plain epoch s", "weight learning ×", "structure learning ×"],
        [
            [
                str(r["arch"]),
                f"{r['width_mult']:g}",
                f"{r['plain_epoch_s']:.2f}",
                f"{r['weight_learning_ratio']:.2f}",
                f"{r['structure_learning_ratio']:.2f}",
            ]
            for r in rows
        ],
    )


def data_memory_section(payload: dict[str, Any]) -> list[str]:
    settings, rows = payload["settings"], payload["results"]
    lines = [
        "## Peak memory against dataset size",
        "",
        f"`python -m bench.data_memory`: `edgeprune compress` ({settings['arch']} "
        f"×{settings['width_mult']:g}, {settings['epochs']}, batch {settings['batch_size']}, "
        f"{settings['data_workers']} data workers) on generated ImageFolder trees of "
        f"{settings['image_size']}×{settings['image_size']} PNGs, each run in a fresh process "
        "whose own peak RSS is read from `wait4`. Images are decoded a batch at a time. Largest "
        f"over smallest: **{payload['peak_ratio_largest_over_smallest']:.2f}×** (goal ≤ 1.2×).",
        "",
    ]
    return lines + table(
        ["images", "PNG on disk MiB", "as float32 MiB", "peak RSS MiB", "seconds"],
        [
            [
                str(r["images"]),
                f"{r['png_mib_on_disk']:.1f}",
                f"{r['float32_mib_if_decoded']:.1f}",
                f"{r['peak_rss_mib']:.1f}",
                f"{r['seconds']:.0f}",
            ]
            for r in rows
        ],
    )


def guard_section(payload: dict[str, Any]) -> list[str]:
    lines = [
        "## CPU kernel guard (training step, ratio to today's oneDNN kernels)",
        "",
        "Median step time of forward + backward + SGD on one batch; the three variants "
        "alternate step by step in one run (docs/cpu-kernels.md). Where a network has no "
        "strided 1×1 convolution the guard does nothing, so its ratio there shows the noise "
        f"of the run ({payload.get('steps', '?')} steps per variant).",
        "",
    ]
    rows = []
    for isa, key in (("native", "native_isa"), ("AVX2", "avx2")):
        for r in payload.get(key, []):
            ratio = r["ratio_to_plain"]
            rows.append(
                [
                    f"{r['arch']} ×{r['width_mult']:g}, {r['input_size']} px, batch {r['batch']}",
                    isa,
                    str(r["strided_pointwise_convs"]),
                    f"{r['step_ms_median']['plain']:.0f}",
                    f"{ratio['guarded']:.2f}",
                    f"{ratio['no_onednn']:.2f}",
                ]
            )
    header = ["network", "oneDNN ISA", "strided 1×1 convs", "plain ms", "guarded ×", "oneDNN off ×"]
    return lines + table(header, rows)


def render(results_dir: Path, out: Path) -> str:
    results = load_results(results_dir)
    out_dir = out.parent
    lines = [
        "# EdgePrune benchmark results",
        "",
        "Generated by `python -m bench.report` from `bench/results/*.json`; do not edit.",
        "",
        *headline(results),
    ]
    for name in quality_payloads(results):
        cells: list[Cell] = quality_cells(results[name]["runs"])
        plot = accuracy_vs_flops(cells, results_dir / f"{name}_accuracy_vs_flops.png")
        lines += ["", *quality_section(results[name], plot, out_dir)]
    if "onnx_speedup" in results:
        rows = results["onnx_speedup"]["results"]
        plot = speedup_vs_flops_ratio(rows, results_dir / "onnx_speedup.png")
        lines += ["", *speedup_section(results["onnx_speedup"], plot, out_dir)]
    for name in int8_payloads(results):
        lines += ["", *int8_section(results[name], name)]
    if "int8_layers" in results:
        lines += ["", *int8_layers_section(results["int8_layers"])]
    if "int8_profile" in results:
        lines += ["", *int8_profile_section(results["int8_profile"])]
    if "structure_overhead" in results:
        lines += ["", *overhead_section(results["structure_overhead"])]
    if "epoch_overhead" in results:
        lines += ["", *epoch_overhead_section(results["epoch_overhead"])]
    if "data_memory" in results:
        lines += ["", *data_memory_section(results["data_memory"])]
    if "cpu_kernel_guard" in results:
        lines += ["", *guard_section(results["cpu_kernel_guard"])]
    for name in ("service_throughput", "service_throughput_c200"):
        if name in results:
            lines += ["", *service_section(results[name])]
    if "fleet_sim" in results:
        lines += ["", *fleet_section(results["fleet_sim"])]
    lines += ["", *environment_section(results), ""]
    text = "\n".join(lines)
    out.write_text(text)
    return text


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--out", type=Path, default=RESULTS.parent / "RESULTS.md")
    args = parser.parse_args(argv)
    render(args.results, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
