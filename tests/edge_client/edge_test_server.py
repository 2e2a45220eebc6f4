"""Test helpers for the edge client: tiny real ONNX models, and a real HTTP test server.

`EdgeTestServer` is a real HTTP/1.1 server on loopback (http.server in a thread), not a
mock of the client: it speaks the slice of the EdgePrune API the device uses (manifest
with ETag/304, artifacts with Range, device registration, reports) in the shapes of
edgeprune.contracts.edge, and can misbehave on purpose: cut a download after N bytes,
ignore Range, answer queued errors with Retry-After, or serve bytes that do not match the
manifest. A report with a field the contract does not name is refused (422), so a misspelt
field fails here instead of being stored as an extra.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
import warnings
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from edgeprune.contracts.edge import BenchmarkContext, DeviceReport, Manifest

INPUT_SHAPE = [3, 16, 16]
CLASSES = ["a", "b", "c", "d"]
ADMIN_TOKEN = "admin-secret"
REPORT_FIELDS = DeviceReport.__optional_keys__ | BenchmarkContext.__optional_keys__


def _export(model: nn.Module, path: Path) -> bytes:
    model.eval()
    # dynamo=False on purpose (the TorchScript exporter is quick and needs no onnxscript);
    # its deprecation notice is expected here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, *INPUT_SHAPE),),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=17,
        )
    return path.read_bytes()


def _net(width: int, depth: int) -> nn.Module:
    torch.manual_seed(width * 31 + depth)
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(depth):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, len(CLASSES))]
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class TinyModels:
    pruned: Path  # the "compressed" model: narrow and shallow
    baseline: Path  # the "unpruned" model: ~100x the FLOPs, so clearly slower
    pruned_v2: Path  # another small model, for a second promotion

    def bytes(self, name: str) -> bytes:
        return Path(getattr(self, name)).read_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Recorded:
    at: float  # time.monotonic()
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class EdgeTestServer:
    """State and knobs of the test server; `url` is set once it listens."""

    url: str = ""
    artifacts: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, Manifest] = field(default_factory=dict)
    # token -> deployment it may read; None = admin
    tokens: dict[str, str | None] = field(default_factory=lambda: {ADMIN_TOKEN: None})
    requests: list[Recorded] = field(default_factory=list)
    reports: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    devices: dict[str, dict[str, str]] = field(default_factory=dict)
    cut_once: dict[str, int] = field(default_factory=dict)  # sha -> bytes before the cut
    ignore_range: bool = False
    # (status, headers) answered to the next requests, before any routing
    queued_failures: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    # the next this many POSTs are answered 503 (a report that fails to post)
    fail_posts: int = 0
    fail_posts_status: int = 503
    # served instead of the real bytes (same length): a corrupted transfer
    corrupt: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_artifact(self, data: bytes) -> str:
        digest = sha256(data)
        self.artifacts[digest] = data
        return digest

    def promote(
        self,
        deployment: str,
        model: bytes,
        *,
        baseline: bytes | None = None,
        version: int | None = None,
        input_shape: list[int] | None = None,
        classes: list[str] | None = None,
        size: int | None = None,
    ) -> Manifest:
        """Publish `model` as the deployment's next version; its fp32 variant only (tests
        add an int8 one to `variants`), without preprocessing (tests may set it)."""
        digest = self.add_artifact(model)
        previous = self.manifests.get(deployment)
        claimed = len(model) if size is None else size
        manifest: Manifest = {
            "deployment": deployment,
            "version": version or (previous["version"] + 1 if previous else 1),
            "job_id": f"job_{digest[:8]}",
            "sha256": digest,
            "size": claimed,
            "url": f"/v1/artifacts/{digest}",
            "baseline_url": None,
            "baseline_sha256": None,
            "input_shape": INPUT_SHAPE if input_shape is None else input_shape,
            "classes": CLASSES if classes is None else classes,
            "flops": 1000,
            "params": 100,
            "variants": [
                {
                    "name": "fp32",
                    "sha256": digest,
                    "size": claimed,
                    "url": f"/v1/artifacts/{digest}",
                    "accuracy": None,
                    "speed_over_fp32": None,
                }
            ],
            "preprocessing": None,
        }
        if baseline is not None:
            base_digest = self.add_artifact(baseline)
            manifest["baseline_url"] = f"/v1/artifacts/{base_digest}"
            manifest["baseline_sha256"] = base_digest
        with self.lock:
            self.manifests[deployment] = manifest
        return manifest

    def device_token(self, deployment: str) -> str:
        token = f"device-{deployment}"
        self.tokens[token] = deployment
        return token

    def artifact_requests(self) -> list[Recorded]:
        return [r for r in self.requests if r.path.startswith("/v1/artifacts/")]


def _make_handler(server: EdgeTestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

        def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            ctype = "application/problem+json" if status >= 400 else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _problem(self, status: int, slug: str, headers: dict[str, str] | None = None) -> None:
            body = {
                "type": f"urn:edgeprune:problem:{slug}",
                "title": slug.replace("-", " "),
                "status": status,
                "detail": f"test server: {slug}",
            }
            self._send_json(status, body, headers)

        def _token_scope(self) -> tuple[bool, str | None]:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
            if token is None or token not in server.tokens:
                return False, None
            return True, server.tokens[token]

        def _record(self) -> None:
            with server.lock:
                server.requests.append(
                    Recorded(time.monotonic(), self.command, self.path, dict(self.headers))
                )

        def _queued_failure(self) -> bool:
            with server.lock:
                if not server.queued_failures:
                    return False
                status, headers = server.queued_failures.pop(0)
            self._problem(status, "service-unavailable", headers)
            return True

        def do_GET(self) -> None:
            self._record()
            if self._queued_failure():
                return
            ok, scope = self._token_scope()
            if not ok:
                return self._problem(401, "unauthorized")
            parts = self.path.split("/")
            if self.path.startswith("/v1/deployments/") and self.path.endswith("/manifest"):
                return self._manifest(parts[3], scope)
            if self.path.startswith("/v1/artifacts/"):
                return self._artifact(parts[3], scope)
            self._problem(404, "not-found")

        def _manifest(self, deployment: str, scope: str | None) -> None:
            if scope is not None and scope != deployment:
                return self._problem(403, "forbidden")
            manifest = server.manifests.get(deployment)
            if manifest is None:
                return self._problem(404, "deployment-not-found")
            etag = f'"{deployment}-v{manifest["version"]}-{manifest["sha256"][:16]}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._send_json(200, manifest, {"ETag": etag})

        def _artifact(self, digest: str, scope: str | None) -> None:
            data = server.artifacts.get(digest)
            if data is None:
                return self._problem(404, "artifact-not-found")
            if digest in server.corrupt:
                data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
            start = 0
            range_header = self.headers.get("Range")
            if range_header and not server.ignore_range:
                start = int(range_header.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with server.lock:
                cut = server.cut_once.pop(digest, None)
            if cut is not None:
                # Send part of the promised body, then drop the connection: a cut link.
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

        def do_POST(self) -> None:
            self._record()
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            if self._queued_failure():
                return
            with server.lock:
                fail, server.fail_posts = server.fail_posts > 0, max(0, server.fail_posts - 1)
            if fail:
                return self._problem(server.fail_posts_status, "refused-by-test")
            ok, scope = self._token_scope()
            if not ok:
                return self._problem(401, "unauthorized")
            parts = self.path.split("/")
            if self.path == "/v1/devices":
                if scope is not None:
                    return self._problem(403, "forbidden")
                device_id = f"dev_{len(server.devices) + 1:04d}"
                token = server.device_token(body["deployment"]) + f"-{device_id}"
                server.tokens[token] = body["deployment"]
                server.devices[device_id] = {"name": body["name"], "token": token}
                return self._send_json(201, {"id": device_id, "token": token})
            if len(parts) == 5 and parts[1:3] == ["v1", "devices"] and parts[4] == "reports":
                if not isinstance(body, dict) or set(body) - REPORT_FIELDS:
                    return self._problem(422, "report-fields-outside-the-contract")
                with server.lock:
                    server.reports.append((parts[3], body))
                return self._send_json(201, {"ok": True})
            self._problem(404, "not-found")

    return Handler


def random_input(batch: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, *INPUT_SHAPE)).astype(np.float32)


def export_tiny_models(folder: Path) -> TinyModels:
    _export(_net(width=4, depth=1), folder / "pruned.onnx")
    _export(_net(width=64, depth=3), folder / "baseline.onnx")
    _export(_net(width=6, depth=1), folder / "pruned_v2.onnx")
    return TinyModels(folder / "pruned.onnx", folder / "baseline.onnx", folder / "pruned_v2.onnx")


def start_server() -> tuple[EdgeTestServer, ThreadingHTTPServer, threading.Thread]:
    state = EdgeTestServer()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    return state, httpd, thread


# The preprocessing written by `described_model` (what an EdgePrune export records).
DESCRIBED = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "value_scale": 1 / 255}


def described_model(source: Path, dest: Path) -> Path:
    """`source` with the `edgeprune.*` metadata an EdgePrune export writes, saved at `dest`."""
    import onnx

    model = onnx.load(str(source))
    meta = {"input_shape": INPUT_SHAPE, **DESCRIBED, "classes": CLASSES}
    for key, value in meta.items():
        model.metadata_props.add(key=f"edgeprune.{key}", value=json.dumps(value))
    onnx.save(model, str(dest))
    return dest


def normalised(pixels: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) raw 0..255 values as `described_model` says to feed them: (N, 3, H, W)."""
    x = pixels.astype(np.float32).transpose(0, 3, 1, 2) * DESCRIBED["value_scale"]
    mean = np.reshape(DESCRIBED["mean"], (1, 3, 1, 1))
    std = np.reshape(DESCRIBED["std"], (1, 3, 1, 1))
    return ((x - mean) / std).astype(np.float32)
