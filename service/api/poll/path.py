"""`PollPath`: answers a manifest poll from memory when it can (see the package docstring).

Made in the app's lifespan. `answer` returns False, having sent nothing, for every poll it
leaves to the regular route: no bearer token, a token it cannot vouch for, a device token
of another deployment, a deployment without a published version, or a database that cannot
be read right now.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time

import anyio.to_thread
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.types import Scope, Send

from infra.store.deployments import rollout_bucket
from infra.store.poll_generation import Generation
from infra.store.tokens import live_identity
from service.api import access, crud, manifest_body
from service.api.manifest_body import RenderedManifest
from service.api.metrics import ApiMetrics
from service.api.poll.cache import Identity, ManifestKey, PollCache
from service.api.poll.gate import FreshnessGate
from service.api.poll.last_seen import LastSeen
from service.api.poll.reader import open_reader

log = logging.getLogger("edgeprune.api.poll")

ROUTE = "/v1/deployments/{name}/manifest"
# How often noted last-seen times are written (the fleet view's online/stale is coarser).
LAST_SEEN_FLUSH_S = 5.0
_JSON = (b"content-type", b"application/json")
_NO_CACHE = (b"cache-control", b"no-cache")


class PollPath:
    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        metrics: ApiMetrics,
        public_url: str | None,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._metrics = metrics
        self._public_url = public_url.rstrip("/") if public_url else None
        self._reader = open_reader(engine)
        self._gate: FreshnessGate[Generation] | None = (
            FreshnessGate(self._reader.read) if self._reader is not None else None
        )
        self.cache = PollCache()
        self.last_seen = LastSeen(access.LAST_SEEN_RESOLUTION)
        # Pre-bound metric children: labels() is a dict lookup under a lock per call.
        self._counted = {
            status: (
                metrics.requests.labels(method="GET", route=ROUTE, status=str(status)),
                metrics.manifest.labels(status=str(status)),
            )
            for status in (200, 304)
        }
        self._latency = metrics.latency.labels(method="GET", route=ROUTE)
        self._flusher: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._flusher = asyncio.get_running_loop().create_task(self._flush_forever())

    async def stop(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush_last_seen()
        if self._reader is not None:
            await self._reader.close()

    async def flush_last_seen(self) -> None:
        pending = self.last_seen.take()
        if pending:
            await anyio.to_thread.run_sync(self.last_seen.write, self._engine, pending)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(LAST_SEEN_FLUSH_S)
            try:
                await self.flush_last_seen()
            except Exception:
                log.exception("writing devices' last-seen times failed; retrying")

    # -- the poll --------------------------------------------------------------------------

    async def answer(self, scope: Scope, name: str, send: Send) -> bool:
        start = time.perf_counter()
        authorization = if_none_match = host = None
        for header, value in scope["headers"]:
            if header == b"authorization":
                authorization = value
            elif header == b"if-none-match":
                if_none_match = value
            elif header == b"host":
                host = value
        if authorization is None or self._gate is None:
            return False
        scheme, _, secret = authorization.decode("latin-1").partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not secret:
            return False
        digest = hashlib.sha256(secret.encode("utf-8")).hexdigest()
        try:
            generation = await self._gate.fresh()
        except Exception:
            log.warning("poll generation unreadable; polls take the regular route", exc_info=True)
            return False
        cache = self.cache
        cache.advance(generation)

        identity = cache.identities.get(digest)
        if identity is None:
            identity = await anyio.to_thread.run_sync(self._load_identity, digest)
            if identity is None:
                return False  # the regular route refuses it (and counts the failure)
            cache.put_identity(generation, digest, identity)
        if identity.deployment is not None and identity.deployment != name:
            return False

        key: ManifestKey = (name, identity.bucket, b"" if self._public_url else (host or b""))
        rendered = cache.manifests.get(key)
        if rendered is None:
            base = self._public_url or str(Request(scope).base_url).rstrip("/")
            rendered = await anyio.to_thread.run_sync(
                self._load_manifest, name, identity.bucket, base
            )
            if rendered is None:
                return False  # 404 from the regular route
            cache.put_manifest(generation, key, rendered)

        if identity.device_id is not None:
            self.last_seen.seen(identity.device_id)
        etag = rendered.etag.encode("latin-1")
        if if_none_match is not None and manifest_body.matches(
            if_none_match.decode("latin-1"), rendered.etag
        ):
            status, headers, body = 304, [(b"etag", etag), _NO_CACHE], b""
        else:
            length = (b"content-length", str(len(rendered.body)).encode("latin-1"))
            status, headers, body = 200, [length, _JSON, (b"etag", etag), _NO_CACHE], rendered.body
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        requests, manifests = self._counted[status]
        requests.inc()
        manifests.inc()
        self._metrics.count_manifest(status)
        self._latency.observe(time.perf_counter() - start)
        return True

    # -- loads on a miss (worker threads) --------------------------------------------------

    def _load_identity(self, digest: str) -> Identity | None:
        with self._sessions() as session:
            found = live_identity(session, digest)
            if found is None:
                return None
        if found.device_id is None:
            return Identity(found.token_id, None, None, crud.NO_DEVICE_BUCKET)
        # First sighting in this process: mark the device seen now, as the route does.
        self.last_seen.written(found.device_id, found.last_seen_at)
        if self.last_seen.due(found.device_id):
            self.last_seen.write(self._engine, {found.device_id: time.time()})
        return Identity(
            found.token_id, found.device_id, found.deployment, rollout_bucket(found.device_id)
        )

    def _load_manifest(self, name: str, bucket: int, base: str) -> RenderedManifest | None:
        with self._sessions() as session:
            row = crud.manifest_row(session, name, bucket)
        return None if row is None else manifest_body.render(row, base)
