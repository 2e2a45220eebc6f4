"""What a process remembers between polls, dropped whenever the poll generation moves.

- identities: sha256 of a live token's secret → who it speaks for. Cleared when the
  `credentials` counter moves (a revocation anywhere), so a revoked token is looked up again
  and refused by the regular route.
- manifests: (deployment, rollout bucket, base URL) → the rendered manifest that bucket's
  devices get. Cleared when the `deployments` counter moves (promote, widen, rollback).

Entries loaded under an older generation are not stored (`put_*` checks), so a slow load
that raced a change cannot put an old answer back after the cache was cleared.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.store.poll_generation import Generation
from service.api.manifest_body import RenderedManifest

# Bounds the manifests cache: base URLs come from the request's Host header, so a client
# could otherwise grow it without end; legitimate keys are deployments x 101 buckets x hosts.
MAX_MANIFESTS = 4096
ManifestKey = tuple[str, int, bytes]


@dataclass(frozen=True, slots=True)
class Identity:
    token_id: str
    device_id: str | None  # None: an admin token
    deployment: str | None  # the device's deployment; None: any (admin)
    bucket: int  # the device's rollout bucket; crud.NO_DEVICE_BUCKET for admins


class PollCache:
    def __init__(self) -> None:
        self.generation: Generation | None = None
        self.identities: dict[str, Identity] = {}
        self.manifests: dict[ManifestKey, RenderedManifest] = {}

    def advance(self, generation: Generation) -> None:
        """Drop what `generation` made stale (nothing when it is the one already held)."""
        held = self.generation
        if held is not None and (
            generation.deployments <= held.deployments
            and generation.credentials <= held.credentials
        ):
            return  # the same, or a read that finished before a newer one was applied
        if held is None or held.credentials != generation.credentials:
            self.identities.clear()
        if held is None or held.deployments != generation.deployments:
            self.manifests.clear()
        self.generation = generation

    def put_identity(self, generation: Generation, digest: str, identity: Identity) -> None:
        if generation == self.generation:
            self.identities[digest] = identity

    def put_manifest(
        self, generation: Generation, key: ManifestKey, manifest: RenderedManifest
    ) -> None:
        if generation != self.generation:
            return
        if len(self.manifests) >= MAX_MANIFESTS:
            self.manifests.clear()
        self.manifests[key] = manifest
