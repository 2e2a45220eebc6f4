"""`edgeprune serve` in a subprocess: the embedded default runs a job over HTTP, prints the
admin token on first start only, and leaves no process behind on SIGTERM, nor on SIGKILL."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.workerproc import wait_for
from tests.support.net import free_port
from tests.worker.tinyjob import write_inputs

pytestmark = pytest.mark.integration


def _session_members(leaders: set[int]) -> set[int]:
    """Pids of every process whose session is led by one of `leaders` (serve's children)."""
    members = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[3]) in leaders:  # fields[3] is the session id
            members.add(int(entry.name))
    return members


def _children_of(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            ppid = next(line for line in status.splitlines() if line.startswith("PPid:"))
            if int(ppid.split()[1]) == pid:
                out.add(int(entry.name))
    return out


def upload_tiny_inputs(client: httpx.Client, folder: Path) -> tuple[str, str]:
    """A tiny vgg11 checkpoint and a digits .npz, uploaded: (model id, dataset id)."""
    checkpoint, data = write_inputs(folder)
    model = client.post(
        "/v1/models",
        data={"arch": "vgg11", "num_classes": "10", "input_shape": "1,32,32"},
        files={"file": ("vgg11.pt", checkpoint.read_bytes(), "application/octet-stream")},
    )
    assert model.status_code == 201, model.text
    dataset = client.post(
        "/v1/datasets",
        files={"file": ("digits.npz", data.read_bytes(), "application/octet-stream")},
    )
    assert dataset.status_code == 201, dataset.text
    return str(model.json()["id"]), str(dataset.json()["id"])


class Serve:
    def __init__(self, data_dir: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEPRUNE_")}
        env.update(
            OMP_NUM_THREADS="1",
            EDGEPRUNE_HEARTBEAT_INTERVAL_S="1",
            EDGEPRUNE_INSPECT_WAIT_S="60",
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edgeprune", "serve", "--data-dir", str(data_dir),
             "--port", str(port), "--log-level", "warning"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        # serve's own children (api, gpu worker, inspect worker): each leads a session.
        self.children: set[int] = set()
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._pump_thread = threading.Thread(target=self._pump, daemon=True)
        self._pump_thread.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if line.strip().startswith(prefix):
                return line.strip()
        tail = "\n".join(self.output[-60:])
        raise AssertionError(f"no line starting with {prefix!r}; output:\n{tail}")

    def stop(self) -> int:
        os.kill(self.process.pid, signal.SIGTERM)
        return self.process.wait(timeout=60)

    def take_lines(self, wait_for_end: bool = False) -> list[str]:
        """The lines printed since the last look (all of them, to the end of the output, with
        `wait_for_end` once the process has exited)."""
        if wait_for_end:
            self._pump_thread.join(timeout=30)
        taken: list[str] = []
        while not self.lines.empty():
            taken.append(self.lines.get())
        self.output.extend(taken)
        return taken

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


@pytest.fixture
def serve_factory(tmp_path: Path) -> Iterator[list[Serve]]:
    started: list[Serve] = []
    yield started
    for serve in started:
        serve.kill()
        for pid in _session_members(serve.children):  # only if the test failed midway
            os.kill(pid, signal.SIGKILL)


def test_serve_runs_a_job_over_http_and_stops_cleanly(
    tmp_path: Path, serve_factory: list[Serve]
) -> None:
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Serve(data_dir, port)
    serve_factory.append(serve)
    assert f"at {url}" in serve.wait_line("EdgePrune is running at", 180)
    serve.wait_line("Admin token", 5)
    token = serve.wait_line("ep_", 5)
    assert (data_dir / "admin-token").read_text().strip() == token
    serve.children = _children_of(serve.process.pid)
    assert len(serve.children) == 3

    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=90)
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert httpx.get(f"{url}/v1/jobs").status_code == 401

    model_id, dataset_id = upload_tiny_inputs(client, tmp_path / "inputs")
    job = client.post(
        "/v1/jobs",
        json={
            "model_id": model_id, "dataset_id": dataset_id,
            "target": {"metric": "flops", "reduction": 0.5}, "structure_epochs": 1,
            "finetune_epochs": 1, "batch_size": 32, "deployment": "demo",
        },
    )  # fmt: skip
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]

    def finished() -> dict[str, Any] | None:
        body = client.get(f"/v1/jobs/{job_id}").json()
        return body if body["state"] in ("succeeded", "failed", "canceled") else None

    body = wait_for(finished, 240, "the job over HTTP", interval=1.0)
    assert body["state"] == "succeeded", body
    manifest = client.get("/v1/deployments/demo/manifest")
    assert manifest.status_code == 200, manifest.text
    onnx = client.get(f"/v1/artifacts/{manifest.json()['sha256']}")
    assert onnx.status_code == 200 and len(onnx.content) == manifest.json()["size"]

    # A worker that dies is restarted by serve. Look the inspect worker up now, not in the
    # set taken at start-up: serve may already have restarted it (a zombie's cmdline is
    # empty, and a CI run once failed here on that).
    inspect_worker = next(
        pid
        for pid in _children_of(serve.process.pid)
        if "inspect" in _cmdline(pid) and not _is_zombie(pid)
    )
    os.killpg(inspect_worker, signal.SIGKILL)
    serve.wait_line("the inspect worker exited", 30)

    def restarted() -> set[int] | None:
        children = _children_of(serve.process.pid)
        alive = {pid for pid in children if not _is_zombie(pid)}
        return alive if len(alive) == 3 and inspect_worker not in alive else None

    serve.children = wait_for(restarted, 30, "serve to restart the inspect worker")
    members = _session_members(serve.children)
    assert len(members) >= 3
    serve.take_lines()
    assert serve.stop() == 0
    # A quiet stop: each worker stops its own pool (signalled in the pool's processes too,
    # a worker logged an ERROR for each of them and started replacements).
    stopping = serve.take_lines(wait_for_end=True)
    assert not [line for line in stopping if "ERROR" in line], stopping
    leftovers = {pid for pid in members if Path(f"/proc/{pid}").exists()}
    leftovers -= {pid for pid in leftovers if _is_zombie(pid)}
    assert not leftovers, f"processes outlived serve: {leftovers}"

    # Second start on the same data dir: no new token is printed.
    again = Serve(data_dir, port)
    serve_factory.append(again)
    again.wait_line("EdgePrune is running at", 180)
    again.children = _children_of(again.process.pid)
    time.sleep(0.5)
    again.take_lines()
    assert not any(line.strip().startswith("ep_") for line in again.output)

    # serve killed outright (no chance to stop its children): they end themselves.
    members = _session_members(again.children)
    assert len(members) >= 3
    os.kill(again.process.pid, signal.SIGKILL)
    again.process.wait(timeout=30)

    def all_gone() -> bool:
        return not {pid for pid in members if not _is_zombie(pid)}

    # A watchdog for processes that never end, not a speed limit.
    wait_for(all_gone, 120, "serve's children to end after serve was killed", interval=1.0)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
