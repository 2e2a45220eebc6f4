"""HTTP client for the EdgePrune service: manifest, artifact download, registration, reports.

Every call has explicit timeouts. Idempotent calls (GETs) are retried on transport errors,
408/429 and 5xx with exponential backoff and full jitter, never sooner than a
`Retry-After` asks. POSTs are retried only when the connection was never made, because a
lost answer to a POST that did arrive would otherwise register a second device. Errors
leave as the typed exceptions of `errors.py`.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from edgeprune.contracts.edge import SentDeviceReport

from . import __version__
from .backoff import Backoff, Stopper
from .errors import EdgeError, IntegrityError, ServerError, Unreachable, from_response
from .manifest import Manifest

log = logging.getLogger("edge_client.api")

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Registration:
    device_id: str
    token: str
    # The device of the same name that a forced registration revoked on the server.
    replaced: str | None = None


def _content_range_start(value: str | None) -> int | None:
    # "bytes 100-199/200" -> 100
    if not value or not value.startswith("bytes "):
        return None
    first = value[6:].split("-", 1)[0].strip()
    return int(first) if first.isdigit() else None


def _content_range_total(value: str | None) -> int | None:
    # "bytes */200" (on 416) or "bytes 0-9/200" -> 200
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


class ApiClient:
    """One server, one bearer token. Use as a context manager so connections are closed."""

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 3,
        backoff: Backoff | None = None,
        stopper: Stopper | None = None,
        rng: random.Random | None = None,
        variant: str = "fp32",
    ) -> None:
        self.server = httpx.URL(server.rstrip("/") + "/")
        self.variant = variant  # which published form of a model to fetch (see Manifest)
        self._token = token
        self._retries = retries
        self._backoff = backoff or Backoff(base=0.5, cap=30.0, jitter=1.0)
        self._stopper = stopper or Stopper()
        self._rng = rng or random.Random()
        self._client = httpx.Client(
            timeout=timeout,
            follow_redirects=True,  # httpx drops Authorization on cross-origin redirects
            headers={"User-Agent": f"edge-client/{__version__}"},
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # -- plumbing ---------------------------------------------------------------------

    def resolve(self, url: str) -> httpx.URL:
        """Manifest URLs may be relative (`/v1/artifacts/<sha>`): resolve against the server."""
        return self.server.join(url)

    def _headers(self, url: httpx.URL, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        # The device token is only ever sent to the server it belongs to, never to an
        # absolute artifact URL on another host (a CDN or a presigned bucket URL).
        same_origin = (url.scheme, url.host, url.port) == (
            self.server.scheme,
            self.server.host,
            self.server.port,
        )
        if self._token and same_origin:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _wait_before_retry(self, failures: int, error: EdgeError) -> None:
        retry_after = getattr(error, "retry_after", None)
        delay = self._backoff.delay(failures, self._rng, retry_after)
        log.info("retry %d/%d in %.2fs after: %s", failures, self._retries, delay, error)
        self._stopper.sleep(delay)

    def _request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        url = self.resolve(path)
        failures = 0
        while True:
            self._stopper.check()
            error: EdgeError
            try:
                response = self._client.request(
                    method, url, headers=self._headers(url, headers), json=json
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # Nothing reached the server: safe to retry even a POST.
                error = Unreachable(f"cannot reach {url.host}:{url.port}: {exc}")
            except httpx.TransportError as exc:
                error = Unreachable(f"{method} {url.path} failed: {exc!r}")
                if not idempotent:
                    raise error from exc
            else:
                if response.status_code < 400:
                    return response
                error = from_response(response)
                if response.status_code not in RETRYABLE_STATUS or not idempotent:
                    raise error
            failures += 1
            if failures > self._retries:
                raise error
            self._wait_before_retry(failures, error)

    # -- calls ------------------------------------------------------------------------

    def get_manifest(self, deployment: str, etag: str | None = None) -> Manifest | None:
        """The deployment's manifest, or None when it still matches `etag` (304)."""
        headers = {"If-None-Match": etag} if etag else {}
        path = f"/v1/deployments/{quote(deployment, safe='')}/manifest"
        response = self._request("GET", path, idempotent=True, headers=headers)
        if response.status_code == 304:
            return None
        try:
            body = response.json()
        except ValueError as exc:
            raise ServerError(f"manifest is not JSON (status {response.status_code})") from exc
        return Manifest.from_json(body, response.headers.get("ETag"), self.variant)

    def register_device(self, name: str, deployment: str, *, force: bool = False) -> Registration:
        """`force`: a live device with this name on the server is revoked and replaced
        (without it the server refuses the name with 409)."""
        body: dict[str, Any] = {"name": name, "deployment": deployment}
        if force:
            body["force"] = True
        response = self._request("POST", "/v1/devices", idempotent=False, json=body)
        answer = response.json()
        try:
            return Registration(
                device_id=str(answer["id"]),
                token=str(answer["token"]),
                replaced=None if answer.get("replaced") is None else str(answer["replaced"]),
            )
        except (KeyError, TypeError) as exc:
            raise ServerError(f"unexpected registration answer: {exc!r}") from exc

    def post_report(self, device_id: str, report: SentDeviceReport) -> None:
        self._request(
            "POST",
            f"/v1/devices/{quote(device_id, safe='')}/reports",
            idempotent=False,
            json=dict(report),
        )

    def download(
        self,
        url: str,
        dest: Path,
        expected_size: int | None,
    ) -> int:
        """Download `url` into `dest`, resuming from whatever `dest` already holds.

        After a cut the next request asks for `Range: bytes=<have>-`; a 206 is appended,
        a 200 (server ignored the range) restarts the file. Failures that made progress
        reset the retry budget, so a slow flaky link still finishes. Returns the size;
        the caller checks the sha256. Raises IntegrityError if the server sends more
        bytes than `expected_size`.
        """
        target = self.resolve(url)
        failures = 0
        while True:
            self._stopper.check()
            have = dest.stat().st_size if dest.exists() else 0
            if expected_size is not None and have > expected_size:
                dest.unlink()  # cannot be the right file: start over
                have = 0
            if expected_size is not None and have == expected_size and have > 0:
                return have  # finished by an earlier run
            before = have
            try:
                done = self._download_once(target, dest, have, expected_size)
                if done is not None:
                    return done
                error: EdgeError = ServerError(f"download of {target.path} ended early")
            except httpx.TransportError as exc:
                error = Unreachable(f"download of {target.path} cut: {exc!r}")
            except ServerError as exc:
                error = exc
            now = dest.stat().st_size if dest.exists() else 0
            if now > before:
                failures = 0  # progress: the link works, only a cut to resume from
            failures += 1
            if failures > self._retries:
                raise error
            self._wait_before_retry(failures, error)

    def _download_once(
        self,
        url: httpx.URL,
        dest: Path,
        have: int,
        expected_size: int | None,
    ) -> int | None:
        """One GET; returns the final size when complete, None when it should be resumed."""
        headers = {"Range": f"bytes={have}-"} if have else {}
        with self._client.stream("GET", url, headers=self._headers(url, headers)) as response:
            status = response.status_code
            if status == 416 and have:
                total = _content_range_total(response.headers.get("Content-Range"))
                if total == have and expected_size in (None, have):
                    return have
                dest.unlink()
                return None
            if status >= 400:
                response.read()
                # 5xx/429 become ServerError, which the caller retries; 4xx end the download.
                raise from_response(response)
            if status == 206 and have:
                start = _content_range_start(response.headers.get("Content-Range"))
                if start != have:
                    raise ServerError(f"server answered range from {start}, asked {have}")
                mode, size = "ab", have
            else:
                mode, size = "wb", 0  # a full body: restart from the first byte
            with dest.open(mode) as fh:
                # No chunk_size: httpx would buffer up to it, and bytes received before a
                # cut would be lost instead of written and resumed from.
                for chunk in response.iter_bytes():
                    self._stopper.check()
                    size += len(chunk)
                    if expected_size is not None and size > expected_size:
                        raise IntegrityError(
                            f"{url.path}: server sent more than {expected_size} bytes"
                        )
                    fh.write(chunk)
                fh.flush()
                os.fsync(fh.fileno())
        if expected_size is not None and size < expected_size:
            return None
        return size
