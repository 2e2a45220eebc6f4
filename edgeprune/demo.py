"""`edgeprune demo`: the whole service on this machine, end to end, with the real commands.

1. train a small VGG on scikit-learn's bundled digits (the "cloud" checkpoint);
2. start `edgeprune serve` (API + workers + SQLite, one data dir);
3. upload the checkpoint and the edge task's data, submit a job (50% fewer FLOPs) that
   publishes to the deployment `demo`, and watch it live;
4. show the published manifest;
5. register an edge device, let `edge-client run --once` pull, verify, swap and benchmark
   the ONNX model against the baseline on this CPU, and report back; then show the
   benchmark as a table (`edge-client bench`).

The job keeps widths multiples of 8 (`--channel-multiple 8`): on a model this small, widths
that do not fill the CPU's SIMD blocks make the pruned model no faster than the original.

Every step is a command a user could type; the demo prints each one before running it.
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

import httpx
import typer

DEPLOYMENT = "demo"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _say(text: str) -> None:
    typer.secho(f"\n== {text}", fg=typer.colors.CYAN, bold=True)


def _run(argv: list[str], env: dict[str, str], *, capture: bool = False) -> str:
    shown = [Path(argv[0]).name if argv[0] == sys.executable else argv[0], *argv[1:]]
    typer.secho("$ " + shlex.join(shown), fg=typer.colors.BRIGHT_BLACK)
    done = subprocess.run(argv, env=env, text=True, capture_output=capture, check=False)
    if done.returncode != 0:
        if capture:
            typer.echo(done.stdout + done.stderr, err=True)
        raise typer.Exit(done.returncode)
    return done.stdout if capture else ""


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
) -> None:
    data_dir = data_dir.resolve()
    work = data_dir / "demo"
    work.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "EDGEPRUNE_SERVER": url}
    edgeprune = [sys.executable, "-m", "edgeprune"]
    edge_client = [sys.executable, "-m", "edge_client"]

    checkpoint = work / f"{arch}-digits.pt"
    dataset = work / "digits-32.npz"
    _say(f"1/5 train a small {arch} on the bundled digits (the cloud model)")
    if not checkpoint.exists():
        _run(
            [*edgeprune, "pretrain", "--arch", arch, "--width-mult", str(width_mult),
             "--epochs", str(pretrain_epochs), "--out", str(checkpoint)],
            env,
        )  # fmt: skip
    else:
        typer.echo(f"(reusing {checkpoint})")
    write_digits_npz(dataset)

    _say(f"2/5 start the service: {url} (data in {data_dir})")
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
        token = (data_dir / "admin-token").read_text().strip()
        env["EDGEPRUNE_TOKEN"] = token
        typer.echo(f"admin token: {token}  (also in {data_dir / 'admin-token'})")

        _say("3/5 upload the checkpoint and the edge data, submit a job, watch it")
        model = json.loads(
            _run(
                [*edgeprune, "models", "upload", str(checkpoint), "--arch", arch,
                 "--num-classes", "10", "--input-shape", "1,32,32", "--json"],
                env,
                capture=True,
            )
        )  # fmt: skip
        typer.echo(f"model {model['id']}: {model['params']:,} params, {model['flops']:,} MACs")
        data = json.loads(
            _run([*edgeprune, "datasets", "upload", str(dataset), "--json"], env, capture=True)
        )
        typer.echo(
            f"dataset {data['id']}: {data['samples']} samples, {len(data['classes'])} classes"
        )
        job_id = _run(
            [*edgeprune, "jobs", "submit", "--model", model["id"], "--dataset", data["id"],
             "--target", "flops=0.5", "--structure-epochs", str(structure_epochs),
             "--finetune-epochs", str(finetune_epochs), "--channel-multiple", "8",
             "--deployment", DEPLOYMENT],
            env,
            capture=True,
        ).strip()  # fmt: skip
        _run([*edgeprune, "jobs", "watch", job_id], env)

        _say(f"4/5 the published manifest of deployment '{DEPLOYMENT}'")
        _run([*edgeprune, "deployments", "show", DEPLOYMENT], env)

        _say("5/5 an edge device pulls, verifies, swaps and benchmarks the model on this CPU")
        state = ["--state-dir", str(work / "device")]
        _run(
            [*edge_client, "register", "--server", url, "--deployment", DEPLOYMENT,
             "--name", "demo-device", "--force", *state],
            env,
        )  # fmt: skip
        _run([*edge_client, "run", "--once", "--runs", "100", *state], env)
        # The same benchmark as a table: the installed model against the baseline.
        _run([*edge_client, "bench", "--runs", "300", "--warmup", "30", *state], env)
        # Repeated here: the first mention scrolls away behind the workers' start-up logs.
        typer.secho(
            f"\nDone. Dashboard: {url}/\nAdmin token: {token}  (also in "
            f"{data_dir / 'admin-token'})",
            fg=typer.colors.GREEN,
            bold=True,
        )
        if keep_running:
            typer.echo("The service keeps running; Ctrl-C stops it.")
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
