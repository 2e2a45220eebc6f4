"""The INT8 sections of bench/RESULTS.md: latency and accuracy of pruned int8 against pruned
fp32 (bench/int8.py), where the time goes (bench/int8_profile.py) and which conv kinds gain
(bench/int8_layers.py)."""

from __future__ import annotations

from typing import Any

from bench.markdown import measured_date, table


def int8_payloads(results: dict[str, Any]) -> list[str]:
    """The files of `bench.int8`, whatever they are named (`--name`): their rows time the
    pruned int8 model (`int8_layers` and `int8_profile` have sections of their own)."""
    return sorted(
        name
        for name, payload in results.items()
        if isinstance(payload.get("results"), list)
        and payload["results"]
        and all(isinstance(r, dict) and "pruned_int8_p50_ms" in r for r in payload["results"])
    )


def int8_section(payload: dict[str, Any], name: str = "int8") -> list[str]:
    rows = payload["results"]
    multiples = sorted({r.get("channel_multiple", 1) for r in rows})
    widths = (
        f" Pruned widths are multiples of {', '.join(map(str, multiples))} (`--channel-multiple`)."
        if multiples != [1]
        else ""
    )
    pretrain = sorted({(str(r["arch"]), r.get("pretrain_epochs", 3)) for r in rows})
    quick = (
        " Quick mode: "
        + ", ".join(f"{epochs} pretraining epochs for {arch}" for arch, epochs in pretrain)
        + "; 1 + 2 compression epochs."
        if payload.get("quick")
        else ""
    )
    # Runs before the narrow-layer rule quantized every node and have no all-int8 column.
    compared = all("int8_all_over_fp32_speedup" in r for r in rows)
    lines = [
        "## INT8 on top of pruning (ONNX Runtime, CPU, 1 thread)"
        + ("" if name == "int8" else f": `{name}`"),
        "",
        f"`python -m bench.int8`: pretrained on {_data(payload)}"
        + (
            f" ({'×'.join(map(str, payload['input_shape']))} inputs)"
            if "input_shape" in payload
            else ""
        )
        + ", compressed, exported, then "
        "quantized by `pruning.export.quantize` (static QDQ, per-channel weights, 256 calibration "
        "samples"
        + (
            "; convs below 512 multiply-accumulates per output position, and what only they "
            "feed, stay fp32: the 'fp32 nodes' column). 'all int8' quantizes every node, as "
            "`pruning.export.quantize` did before; the four models take turns run by run"
            if compared
            else "). The three models take turns run by run"
        )
        + "; accuracy is onnxruntime's on the test split."
        + quick
        + widths
        + (f" CPU integer features: {', '.join(payload['isa'])}." if payload.get("isa") else "")
        + (f" {' '.join(payload['notes'])}" if payload.get("notes") else ""),
        "",
    ]
    header = ["arch", "width", "FLOPs red. %", "batch", "baseline ms", "pruned fp32 ms",
              "pruned int8 ms", "int8 / fp32 speedup"]  # fmt: skip
    if compared:
        header += ["all int8 / fp32", "fp32 nodes"]
    header += ["baseline acc %", "fp32 acc %", "int8 acc %"] + (
        ["all int8 acc %"] if compared else []
    )
    body = []
    for r in rows:
        row = [
            str(r["arch"]), f"{r['width_mult']:g}",
            f"{100 * r['achieved_flops_reduction']:.1f}", str(r["batch"]),
            f"{r['baseline_p50_ms']:.2f}", f"{r['pruned_fp32_p50_ms']:.2f}",
            f"{r['pruned_int8_p50_ms']:.2f}", f"{r['int8_over_fp32_speedup']:.2f}",
        ]  # fmt: skip
        if compared:
            row += [f"{r['int8_all_over_fp32_speedup']:.2f}", str(r["int8_fp32_nodes"])]
        row += [
            f"{100 * r['baseline_accuracy']:.2f}",
            f"{100 * r['pruned_fp32_accuracy']:.2f}",
            f"{100 * r['pruned_int8_accuracy']:.2f}",
        ]
        if compared:
            row.append(f"{100 * r['pruned_int8_all_accuracy']:.2f}")
        body.append(row)
    return lines + table(header, body)


LAYOUT_OPS = ("ReorderInput", "ReorderOutput", "Transpose", "QuantizeLinear", "DequantizeLinear")


def int8_profile_section(payload: dict[str, Any]) -> list[str]:
    """`bench.int8_profile`: where the time goes, fp32 against int8, by kind of node."""
    s = payload["settings"]
    lines = [
        "## Where INT8's time goes (onnxruntime profiler, CPU, 1 thread)",
        "",
        f"`python -m bench.int8_profile`: {s['arch']} ×{s['width']:g} pruned by "
        f"{100 * s['reduction']:.0f}% FLOPs to widths that are multiples of "
        f"{s['channel_multiple']} ({', '.join(map(str, payload['widths']))}), each model's "
        "run and nodes timed by onnxruntime's own profiler (mean µs per run). 'int8 ops' are "
        "the QLinear*/QGemm nodes; 'fp32 convs' the Conv nodes still fp32 after onnxruntime's "
        "fusions (the quantizer kept "
        f"{', '.join(n for n in payload['fp32_nodes'] if n.endswith('Conv'))} in fp32; one "
        "between int8 layers is fused back into int8); 'layout' the reorders, transposes and "
        "(de)quantizations between them. At batch 1 the profiler's own cost per node weighs "
        "on both models; `int8_multiple8` has the plain latencies.",
        "",
        "| model | batch | run µs | int8 ops µs | fp32 convs µs | layout µs | other µs |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, row in payload["profiles"].items():
        model, batch = key.split("_batch")
        ops = row["by_op_us"]
        int8 = sum(v for k, v in ops.items() if k.startswith(("QLinear", "QGemm")))
        fp32 = ops.get("Conv", 0.0)
        layout = sum(ops.get(k, 0.0) for k in LAYOUT_OPS)
        other = sum(ops.values()) - int8 - fp32 - layout
        lines.append(
            f"| {model} | {batch} | {row['run_us']:.0f} | {int8:.0f} | {fp32:.0f} | "
            f"{layout:.0f} | {other:.0f} |"
        )
    return lines


def int8_layers_section(payload: dict[str, Any]) -> list[str]:
    lines = [
        "## Where INT8 pays off: one conv kind at a time (ONNX Runtime, CPU, 1 thread)",
        "",
        "`python -m bench.int8_layers`: six identical conv + BN + ReLU layers on a 16×16 map "
        "(the stem: one 1-channel → width conv at 32×32), every node int8 against fp32, taking "
        "turns run by run. Speedup = fp32 p50 / int8 p50; below 1 int8 is slower. This sets "
        "`pruning.export.narrow_layers.MIN_INT8_MACS`."
        + (f" CPU integer features: {', '.join(payload['isa'])}." if payload.get("isa") else ""),
        "",
    ]
    rows = payload["results"]
    widths: dict[str, list[int]] = {}
    for r in rows:
        widths.setdefault(r["kind"], [])
        if r["width"] not in widths[r["kind"]]:
            widths[r["kind"]].append(r["width"])
    speedup = {(r["kind"], r["width"], r["batch"]): r["int8_over_fp32_speedup"] for r in rows}
    body = [
        [kind, str(width)]
        + [
            f"{speedup[(kind, width, b)]:.2f}" if (kind, width, b) in speedup else "?"
            for b in (1, 32)
        ]
        for kind, ws in widths.items()
        for width in ws
    ]
    return lines + table(
        ["conv", "channels", "int8 / fp32, batch 1", "int8 / fp32, batch 32"], body
    )


def int8_headline(results: dict[str, dict[str, Any]]) -> list[str]:
    """One sentence per `bench.int8` file: the range of int8's speedup over pruned fp32 and of
    its accuracy change, on the data it was measured on."""
    said = []
    for name in int8_payloads(results):
        payload = results[name]
        rows = payload["results"]
        archs = len({r["arch"] for r in rows})
        speedups = [r["int8_over_fp32_speedup"] for r in rows]
        drops = [100 * r["int8_accuracy_drop"] for r in rows]
        said.append(
            f"INT8 over the pruned fp32 model (`{name}`, {_data(payload)}, "
            f"1 thread, measured {measured_date(payload)}): {min(speedups):.2f}–"
            f"{max(speedups):.2f}× faster across {archs} architecture{'s' * (archs != 1)} "
            f"and batch 1 and 32, for an accuracy change of {-max(drops):+.2f} to "
            f"{-min(drops):+.2f} points."
        )
    return said


def _data(payload: dict[str, Any]) -> str:
    """The data a bench.int8 file was measured on: files written before `--data` existed were
    all digits."""
    return str(payload.get("data", "builtin:digits"))
