"""`edgeprune demo`: the whole service on this machine, end to end, with the real commands.

1. train a small VGG on scikit-learn's bundled digits (the "cloud" checkpoint);
2. start `edgeprune serve` (API + workers + SQLite, one data dir);
3. upload the checkpoint and the edge task's data, submit a job (50% fewer FLOPs, and an
   INT8 form published beside the fp32 model when it keeps the accuracy) that publishes to
   the deployment `demo`, and watch it live;
4. show the published manifest;
5. register an edge device, let `edge-client run --once --also-fp32` pull, verify, swap
   and benchmark the ONNX model (int8 when published and not slower) against the baseline
   and the fp32 pruned model on this CPU, and report back; then show the benchmark as a
   table (`edge-client bench --also-fp32`): what pruning and quantization each bought.

The job keeps widths multiples of 8 (`--channel-multiple 8`): on a model this small, widths
that do not fill the CPU's SIMD blocks make the pruned model no faster than the original.

Every step is a command a user could type; the demo prints each one before running it.
With --json the steps run with their own --json, everything a person reads goes to stderr,
and stdout gets one object at the end, made of what those commands printed (`demo_document`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from edgeprune.json_output import echo_json

DEPLOYMENT = "demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Narrator:
    """The demo's voice: on stdout for a person, on stderr with --json (stdout then carries
    only the closing JSON object)."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json

    def say(self, text: str) -> None:
        typer.secho(f"\n== {text}", fg=typer.colors.CYAN, bold=True, err=self.as_json)

    def echo(self, text: str) -> None:
        typer.echo(text, err=self.as_json)

    def run(self, argv: list[str], env: dict[str, str], *, capture: bool = False) -> str:
        """Run one command, shown first; `capture` returns its stdout. With --json an
        uncaptured command's stdout goes to stderr, and a captured one's stderr is shown."""
        shown = [Path(argv[0]).name if argv[0] == sys.executable else argv[0], *argv[1:]]
        typer.secho("$ " + shlex.join(shown), fg=typer.colors.BRIGHT_BLACK, err=self.as_json)
        if capture:
            stderr = None if self.as_json else subprocess.PIPE
            done = subprocess.run(
                argv, env=env, text=True, stdout=subprocess.PIPE, stderr=stderr, check=False
            )
        else:
            stdout = 2 if self.as_json else None  # fd 2: our stderr
            done = subprocess.run(argv, env=env, text=True, stdout=stdout, check=False)
        if done.returncode != 0:
            if capture:
                typer.echo(done.stdout + (done.stderr or ""), err=True)
            raise typer.Exit(done.returncode)
        return done.stdout if capture else ""

    def run_json(self, argv: list[str], env: dict[str, str]) -> Any:
        """A command run with --json, its output parsed: the one object it printed, or the
        last line of a stream of JSON lines (`jobs watch --json`: the finished job)."""
        text = self.run([*argv, "--json"], env, capture=True)
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return json.loads(text.strip().splitlines()[-1])


def write_digits_npz(path: Path) -> None:
    """The edge task's data as a user would upload it: 32×32 uint8 images and labels."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images.astype(np.float32) * (255.0 / 16.0))[:, None]
    x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    images = x[:, 0].round().clamp(0, 255).to(torch.uint8).numpy()
    np.savez_compressed(path, x=images, y=digits.target.astype(np.int64))


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"edgeprune serve exited with {server.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the service did not become ready within {timeout:.0f} s")


def run_demo(
    data_dir: Path,
    port: int | None,
    arch: str,
    width_mult: float,
    pretrain_epochs: int,
    structure_epochs: int,
    finetune_epochs: int,
    keep_running: bool,
    as_json: bool = False,
) -> None:
    data_dir = data_dir.resolve()
    work = data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EDGEPRUNE_SERVER": url}
    edgeprune = [sys.executable, "-m", "edgeprune"]
    edge_client = [sys.executable, "-m", "edge_client"]
    say = _Narrator(as_json)

    checkpoint = work / f"{arch}-digits.pt"
    dataset = work / "digits-32.npz"
    say.say(f"1/5 train a small {arch} on the bundled digits (the cloud model)")
    if not checkpoint.exists():
        say.run(
            [*edgeprune, "pretrain", "--arch", arch, "--width-mult", str(width_mult),
             "--epochs", str(pretrain_epochs), "--out", str(checkpoint)],
            env,
        )  # fmt: skip
    else:
        say.echo(f"(reusing {checkpoint})")
    write_digits_npz(dataset)

    say.say(f"2/5 start the service: {url} (data in {data_dir})")
    log = (data_dir / "serve.log").open("ab")
    server = subprocess.Popen(
        [*edgeprune, "serve", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_healthy(url, server)
        token_file = data_dir / "admin-token"
        token = token_file.read_text().strip()
        env["EDGEPRUNE_TOKEN"] = token
        say.echo(f"admin token: {token}  (also in {token_file})")

        say.say("3/5 upload the checkpoint and the edge data, submit a job, watch it")
        model = say.run_json(
            # The checkpoint records its arch and classes; the shape says what pretrain saw.
            [*edgeprune, "models", "upload", str(checkpoint), "--input-shape", "1,32,32"],
            env,
        )  # fmt: skip
        say.echo(f"model {model['id']}: {model['params']:,} params, {model['flops']:,} MACs")
        data = say.run_json([*edgeprune, "datasets", "upload", str(dataset)], env)
        say.echo(f"dataset {data['id']}: {data['samples']} samples, {len(data['classes'])} classes")
        job_id = say.run(
            [*edgeprune, "jobs", "submit", "--model", model["id"], "--dataset", data["id"],
             "--target", "flops=0.5", "--structure-epochs", str(structure_epochs),
             "--finetune-epochs", str(finetune_epochs), "--channel-multiple", "8",
             "--quantize", "int8", "--deployment", DEPLOYMENT],
            env,
            capture=True,
        ).strip()  # fmt: skip
        watch = [*edgeprune, "jobs", "watch", job_id]
        # With --json the watch prints JSON lines; the last one holds the finished job.
        job = say.run_json(watch, env)["data"] if as_json else say.run(watch, env)

        say.say(f"4/5 the published manifest of deployment '{DEPLOYMENT}'")
        show = [*edgeprune, "deployments", "show", DEPLOYMENT]
        deployment = say.run_json(show, env) if as_json else say.run(show, env)

        say.say("5/5 an edge device pulls, verifies, swaps and benchmarks the model on this CPU")
        state = ["--state-dir", str(work / "device")]
        register = [*edge_client, "register", "--server", url, "--deployment", DEPLOYMENT,
                    "--name", "demo-device", "--force", *state]  # fmt: skip
        device = say.run_json(register, env) if as_json else say.run(register, env)
        # --also-fp32: with an int8 model installed, time the fp32 pruned one beside it.
        pull = [*edge_client, "run", "--once", "--runs", "100", "--also-fp32", *state]
        install = say.run_json(pull, env) if as_json else say.run(pull, env)
        # The same benchmark as a table: the installed model against the baseline.
        bench = [*edge_client, "bench", "--runs", "300", "--warmup", "30", "--also-fp32", *state]
        benchmark = say.run_json(bench, env) if as_json else say.run(bench, env)
        if as_json:
            echo_json(
                demo_document(
                    url, token, token_file, model, data, job, deployment, device, install, benchmark
                )
            )
        else:
            # Repeated here: the first mention scrolls away behind the workers' start-up logs.
            typer.secho(
                f"\nDone. Dashboard: {url}/\nAdmin token: {token}  (also in {token_file})",
                fg=typer.colors.GREEN,
                bold=True,
            )
        if keep_running:
            say.echo("The service keeps running; Ctrl-C stops it.")
            server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        log.close()


def demo_document(
    url: str,
    token: str,
    token_file: Path,
    model: dict[str, Any],
    dataset: dict[str, Any],
    job: dict[str, Any],
    deployment: dict[str, Any],
    device: dict[str, Any],
    install: dict[str, Any],
    benchmark: dict[str, Any],
) -> dict[str, Any]:
    """`edgeprune demo --json`'s closing object, from what each step's own --json printed:
    the dashboard and admin token, the uploaded model and dataset, the finished job (its
    summary: reductions and accuracies), the deployment with its manifest, and the device's
    registration, install and benchmark."""
    return {
        "dashboard": f"{url}/",
        "server": url,
        "admin_token": token,
        "admin_token_file": str(token_file),
        "model": model,
        "dataset": dataset,
        "job": job,
        "deployment": deployment,
        "device": {"registration": device, "install": install, "benchmark": benchmark},
    }
