"""`edge-client bench`: time a model on this CPU, beside its baseline, as a table or JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeprune.contracts.dims import DimsError, parse_dims

from ..bench import BenchConfig, BenchResult, LatencyStats, run_benchmark
from ..errors import ConfigError, NotSetUp
from ..predict import Preprocessing
from .options import StateDirOpt, err, exit_on_error, out, state_folder


def bench(
    model: Annotated[
        Path | None, typer.Option(help="ONNX model (default: current/model.onnx).")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(help="Baseline to compare with (default: current/baseline.onnx)."),
    ] = None,
    no_baseline: Annotated[
        bool, typer.Option("--no-baseline", help="Skip the baseline even if present.")
    ] = False,
    fp32: Annotated[
        Path | None,
        typer.Option(
            help="The fp32 pruned model to time beside an int8 --model (default with "
            "--also-fp32: the one installed by `run --also-fp32`)."
        ),
    ] = None,
    also_fp32: Annotated[
        bool,
        typer.Option("--also-fp32", help="Time the installed fp32 pruned model too."),
    ] = False,
    threads: Annotated[int, typer.Option(min=1, metavar="N", help="Intra-op threads (fixed).")] = 1,
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="Timed runs per model.")] = 50,
    warmup: Annotated[
        int, typer.Option(min=0, metavar="N", help="Untimed warm-up runs per model.")
    ] = 5,
    batch_size: Annotated[
        int, typer.Option(min=1, metavar="N", help="Samples per inference call.")
    ] = 1,
    old_batch: Annotated[
        int | None, typer.Option("--batch", min=1, hidden=True, help="Old --batch-size.")
    ] = None,
    input_shape: Annotated[
        str | None,
        typer.Option(
            metavar="C,H,W", help="Shape of one sample, for models with dynamic dims: 3,32,32."
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            help="Labelled .npz (x, y) for on-device accuracy. Integer x (e.g. uint8 pixels, "
            "NCHW/NHWC/NHW) gets the manifest's preprocessing; float x is taken as already "
            "normalised in the model's layout unless --raw."
        ),
    ] = None,
    raw: Annotated[
        bool, typer.Option("--raw", help="Float x of --data holds raw values: preprocess it too.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Benchmark a model on this CPU: p50/p95/p99 latency, throughput, peak RSS, speedup."""
    if old_batch is not None:
        err.print("note: --batch is now --batch-size (the old name still works)", highlight=False)
        batch_size = old_batch
    with exit_on_error():
        shape: list[int] | None = None
        prep: Preprocessing | None = None
        if input_shape:
            try:
                dims, note = parse_dims(input_shape, option="--input-shape", names="C,H,W")
            except DimsError as exc:
                raise ConfigError(str(exc)) from None
            if note:
                err.print(f"note: {note}", highlight=False, soft_wrap=True)
            shape = list(dims)
        if model is None:
            installed = state_folder(state_dir).current()
            if installed is None:
                raise NotSetUp("no model in current/: pass --model or run `edge-client run`")
            model = installed.model_path
            if baseline is None:
                baseline = installed.baseline_path
            shape = shape or (list(installed.manifest.input_shape or []) or None)
            prep = Preprocessing.from_manifest(installed.manifest)
            if also_fp32 and fp32 is None and installed.manifest.variant != "fp32":
                fp32 = installed.fp32_path
                if fp32 is None:
                    raise ConfigError(
                        "no fp32 model installed beside the int8 one: run `edge-client run "
                        "--also-fp32` (it is fetched with the next install), or pass --fp32"
                    )
        elif also_fp32 and fp32 is None:
            raise ConfigError("--also-fp32 with --model needs the fp32 model: pass --fp32 PATH")
        for path in (model, baseline, fp32):
            if path is not None and not path.is_file():
                raise ConfigError(f"no such model file: {path}")
        result = run_benchmark(
            model,
            baseline=None if no_baseline else baseline,
            fp32=fp32,
            config=BenchConfig(threads=threads, runs=runs, warmup=warmup, batch=batch_size),
            input_shape=shape,
            data=data,
            raw=True if raw else None,
            preprocessing=prep,
        )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        _print_bench(result)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:,.3f}{unit}"


def _print_bench(result: BenchResult) -> None:
    # One column per model timed: the model, then the fp32 pruned one, then the baseline.
    columns: list[tuple[str, LatencyStats, float | None, float | None]] = [
        ("model", result.latency_ms, result.throughput, result.accuracy)
    ]
    if result.fp32_latency_ms is not None:
        columns.append(
            ("fp32 pruned", result.fp32_latency_ms, result.fp32_throughput, result.fp32_accuracy)
        )
    if result.baseline_latency_ms is not None:
        columns.append(
            (
                "baseline",
                result.baseline_latency_ms,
                result.baseline_throughput,
                result.baseline_accuracy,
            )
        )
    table = Table(title=f"{Path(result.model).name} on {result.cpu['model']}")
    table.add_column("")
    for name, *_ in columns:
        table.add_column(name, justify="right")
    for key in ("p50", "p95", "p99"):
        table.add_row(f"latency {key} (ms)", *(_fmt(getattr(c[1], key)) for c in columns))
    table.add_row("throughput (samples/s)", *(_fmt(c[2]) for c in columns))
    if result.accuracy is not None:
        table.add_row("accuracy", *(_fmt(c[3]) for c in columns))
    out.print(table)
    if result.speedup_vs_fp32 is not None:
        out.print(f"speedup vs fp32 pruned (p50): [bold]{result.speedup_vs_fp32:.2f}x[/]")
    if result.speedup is not None:
        out.print(f"speedup vs baseline (p50): [bold]{result.speedup:.2f}x[/]")
    out.print(
        f"threads {result.threads}, batch {result.batch}, {result.runs} runs after "
        f"{result.warmup} warm-up, peak RSS {result.peak_rss_mb:.1f} MB, "
        f"onnxruntime {result.onnxruntime_version}",
        highlight=False,
    )
