"""`edge-client`: the device side of EdgePrune on the command line.

Errors print one line on stderr and exit with the code of their class (see errors.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgeprune import help_format
from edgeprune.contracts import exit_codes
from edgeprune.contracts.dims import DimsError, parse_dims

from .api import ApiClient
from .backoff import Stopper
from .bench import BenchConfig, BenchResult, LatencyStats, run_benchmark
from .errors import ConfigError, EdgeError, NothingToRollBack, NotSetUp
from .predict import Preprocessing
from .runner import RunConfig, Runner
from .state import DeviceConfig, StateDir

# Everything but the engine's own code (a stalled training run).
help_format.install()
EXIT_CODES = exit_codes.epilog(c for c in exit_codes.ExitCode if c != exit_codes.ExitCode.STALLED)

app = typer.Typer(
    help="EdgePrune edge client: poll, verify, swap, benchmark and report.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
log = logging.getLogger("edge_client")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-client"


StateDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="EDGE_CLIENT_STATE_DIR",
        metavar="DIR",
        help="Local state folder (default: $XDG_STATE_HOME/edge-client).",
    ),
]


def _state(path: Path | None) -> StateDir:
    return StateDir(path or _default_state_dir())


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Typed errors become one line on stderr and their exit code; bugs keep a traceback."""
    try:
        yield
    except EdgeError as exc:
        # Escaped: a message naming an extra ('edgeprune[edge-images]') is not markup; soft
        # wrap keeps it one line for scripts that read stderr.
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


# The names `edgeprune serve|api|worker --log-level` take too.
LogLevelName = Literal["debug", "info", "warning", "error", "critical"]
LogLevelOpt = Annotated[
    LogLevelName,
    typer.Option("--log-level", case_sensitive=False, help="Least severe log lines shown."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of lines.")]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)


@app.command()
def register(
    server: Annotated[
        str, typer.Option(metavar="URL", help="Service URL, e.g. https://edgeprune.example")
    ],
    deployment: Annotated[str, typer.Option(metavar="NAME", help="Deployment this device runs.")],
    name: Annotated[str, typer.Option(metavar="NAME", help="This device's name, e.g. cam-17.")],
    token: Annotated[
        str | None,
        typer.Option(
            envvar="EDGEPRUNE_TOKEN", metavar="TOKEN", help="Admin or enrolment token (not stored)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Replace an existing registration: this folder's, and on the server a live "
            "device of the same name (its token is revoked).",
        ),
    ] = False,
    as_json: JsonOpt = False,
    log_level: LogLevelOpt = "warning",
    state_dir: StateDirOpt = None,
) -> None:
    """Register this device; stores its id and its own token (mode 0600) in the state folder.

    The deployment must exist on the server (or a job must be about to publish to it), and
    the name must not belong to another live device unless --force."""
    _setup_logging(log_level)
    with _errors():
        state = _state(state_dir)
        if state.config_path.exists() and not force:
            raise ConfigError(f"already registered ({state.config_path}); use --force to replace")
        if not token:
            raise ConfigError("an admin or enrolment token is needed: --token or EDGEPRUNE_TOKEN")
        with ApiClient(server, token) as api:
            registration = api.register_device(name, deployment, force=force)
        state.save_config(
            DeviceConfig(
                server=server,
                deployment=deployment,
                device_id=registration.device_id,
                name=name,
                token=registration.token,
            )
        )
    if as_json:  # never the device's token: it is in the state folder, mode 0600
        done = {"device_id": registration.device_id, "name": name, "deployment": deployment}
        typer.echo(json.dumps({**done, "replaced": registration.replaced}))
        return
    replaced = f" (revoked {registration.replaced})" if registration.replaced else ""
    out.print(f"registered {name} as {registration.device_id} for {deployment}{replaced}")


def _install_signal_handlers(stopper: Stopper) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if stopper.stopped and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait
        log.info("got %s: stopping", signal.Signals(signum).name)
        stopper.stop()

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="One poll-update-benchmark cycle, then exit.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=1.0, metavar="SECONDS", help="Seconds between polls.")
    ] = 300.0,
    threads: Annotated[
        int, typer.Option(min=1, metavar="N", help="Benchmark intra-op threads.")
    ] = 1,
    runs: Annotated[int, typer.Option(min=1, metavar="N", help="Timed benchmark runs.")] = 50,
    warmup: Annotated[int, typer.Option(min=0, metavar="N", help="Untimed warm-up runs.")] = 5,
    variant: Annotated[
        Literal["auto", "fp32", "int8"],
        typer.Option(
            help="Which form of the model to run: auto (int8 when the server published one), "
            "fp32 or int8."
        ),
    ] = "auto",
    also_fp32: Annotated[
        bool,
        typer.Option(
            "--also-fp32",
            help="With an int8 model, also fetch the fp32 pruned model and time it in the same "
            "run: the report then shows baseline, fp32 and int8 latency. Takes effect with the "
            "next install.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="With --once: print the cycle's outcome as JSON.")
    ] = False,
    log_level: LogLevelOpt = "info",
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", hidden=True, help="Old --log-level debug.")
    ] = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Poll for new models, install them safely, benchmark and report; stops on SIGINT/SIGTERM."""
    _setup_logging("debug" if verbose else log_level)
    with _errors():
        state = _state(state_dir)
        device = state.load_config()
        stopper = Stopper()
        _install_signal_handlers(stopper)
        config = RunConfig(
            interval=interval, bench=BenchConfig(threads=threads, runs=runs, warmup=warmup)
        )
        if not once:
            out.print(
                f"polling deployment {device.deployment} on {device.server} every ~{interval:.0f}"
                f" s (variant {variant}); Ctrl-C stops"
            )
        with ApiClient(
            device.server, device.token, stopper=stopper, retries=2, variant=variant
        ) as api:
            runner = Runner(api, state, device, config, stopper, also_fp32=also_fp32)
            if not once:
                runner.run()
                return
            result = runner.cycle()
        current = state.current()
        version = current.manifest.version if current else None
        if as_json:
            outcome = {
                "outcome": result.update.outcome.value,
                "version": version,
                "variant": current.manifest.variant if current else None,
                "reported": result.report is not None,
            }
            typer.echo(json.dumps(outcome))
            return
        reported = "reported" if result.report is not None else "nothing to report"
        form = f" ({current.manifest.variant})" if current else ""
        out.print(f"{result.update.outcome.value}: current version {version}{form}; {reported}")


@app.command()
def predict(
    files: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            dir_okay=False,
            metavar="FILE...",
            help="Images (PNG, JPEG, ...; needs the edge-images extra), or .npy/.npz arrays of "
            "raw samples: (N,C,H,W), (N,H,W,C) or (N,H,W), in the source's own scale (e.g. "
            "0..255 pixels). The manifest's preprocessing (or the model's metadata) is applied.",
        ),
    ],
    model: Annotated[
        Path | None, typer.Option(help="ONNX model (default: the installed current model).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, metavar="N", help="Classes listed per sample.")] = 3,
    as_json: JsonOpt = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Classify images or raw samples with the installed model, preprocessed as it says."""
    from .predict import classify, open_model
    from .samples import read_samples

    with _errors():
        model, prep = _model_and_preprocessing(model, state_dir)
        session = open_model(model)
        prep = prep or Preprocessing.from_model(session)
        samples = read_samples(files, prep)
        results = classify(session, samples.x, prep.classes, top)
    for note in samples.notes:  # on stderr: --json output stays parseable
        err.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
    if as_json:
        out.print_json(data=[
            {"source": name, "label": r.label, "index": r.index, "probability": r.probability,
             "top": r.top}
            for name, r in zip(samples.names, results, strict=True)
        ])  # fmt: skip
        return
    for name, r in zip(samples.names, results, strict=True):
        ranked = ", ".join(f"{label} {p:.2f}" for label, p in r.top)
        out.print(f"{name}: {r.label} ({r.probability:.2f})  [{ranked}]", highlight=False)


def _model_and_preprocessing(
    model: Path | None, state_dir: Path | None
) -> tuple[Path, Preprocessing | None]:
    """The model to run and the installed manifest's preprocessing (None for --model, or a
    manifest without one: the model's own metadata is used then)."""
    if model is not None:
        return model, None
    current = _state(state_dir).current()
    if current is None:
        raise NotSetUp("no model installed yet: run `edge-client run --once` first")
    return current.model_path, Preprocessing.from_manifest(current.manifest)


@app.command()
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
    with _errors():
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
            installed = _state(state_dir).current()
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


@app.command()
def rollback(
    as_json: JsonOpt = False, log_level: LogLevelOpt = "warning", state_dir: StateDirOpt = None
) -> None:
    """Restore previous/ as current/; the version left is held back until a newer promotion."""
    _setup_logging(log_level)
    with _errors():
        state = _state(state_dir)
        if not state.root.exists():
            raise NothingToRollBack(f"no state folder at {state.root}")
        with state.lock():
            restored = state.rollback()
    if as_json:
        typer.echo(json.dumps({"version": restored.manifest.version}))
        return
    out.print(f"rolled back to version {restored.manifest.version}")


def _status(state: StateDir) -> dict[str, Any]:
    info: dict[str, Any] = {"state_dir": str(state.root), "registered": False}
    if state.config_path.exists():
        device = state.load_config()
        info.update(asdict(replace(device, token="***")), registered=True)
    for label, installed in (("current", state.current()), ("previous", state.previous())):
        info[label] = (
            None
            if installed is None
            else {
                "version": installed.manifest.version,
                "job_id": installed.manifest.job_id,
                "sha256": installed.manifest.sha256,
                "baseline": installed.baseline_path is not None,
            }
        )
    info["poll"] = asdict(state.load_poll())
    return info


@app.command()
def status(
    as_json: JsonOpt = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Show the registration, current/ and previous/ versions, and the poll state."""
    with _errors():
        state = _state(state_dir)
        if not state.root.exists():
            info: dict[str, Any] = {"state_dir": str(state.root), "registered": False}
        else:
            with state.lock():
                info = _status(state)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        out.print(f"{key}: {value}", highlight=False)
