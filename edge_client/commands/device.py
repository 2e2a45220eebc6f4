"""The device's lifecycle commands: register, run (poll, install, benchmark, report),
rollback and status."""

from __future__ import annotations

import json
import logging
import signal
from dataclasses import asdict, replace
from types import FrameType
from typing import Annotated, Any

import typer

from ..api import ApiClient
from ..backoff import Stopper
from ..bench import BenchConfig
from ..errors import ConfigError, NothingToRollBack
from ..manifest import VariantChoice
from ..runner import RunConfig, Runner
from ..state import DeviceConfig, StateDir
from .options import (
    JsonOpt,
    LogLevelOpt,
    StateDirOpt,
    exit_on_error,
    out,
    setup_logging,
    state_folder,
)

log = logging.getLogger("edge_client")


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
    setup_logging(log_level)
    with exit_on_error():
        state = state_folder(state_dir)
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
        VariantChoice,
        typer.Option(
            help="Which form of the model to run: auto (int8 when the server published one "
            "and did not time it slower than fp32), fp32 or int8."
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
    setup_logging("debug" if verbose else log_level)
    with exit_on_error():
        state = state_folder(state_dir)
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


def rollback(
    as_json: JsonOpt = False, log_level: LogLevelOpt = "warning", state_dir: StateDirOpt = None
) -> None:
    """Restore previous/ as current/; the version left is held back until a newer promotion."""
    setup_logging(log_level)
    with exit_on_error():
        state = state_folder(state_dir)
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


def status(
    as_json: JsonOpt = False,
    state_dir: StateDirOpt = None,
) -> None:
    """Show the registration, current/ and previous/ versions, and the poll state."""
    with exit_on_error():
        state = state_folder(state_dir)
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
