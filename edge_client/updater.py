"""One poll-update cycle: manifest -> download -> verify -> test inference -> swap.

Order matters: nothing touches current/ until the new model has the manifest's size and
sha256 *and* this device's onnxruntime has opened it and run one inference on zeros of
the manifest's input shape. A corrupted or unusable download only ever lives in
downloads/ and a staging folder.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeprune.contracts.edge import InstallStage

from .api import ApiClient
from .errors import IntegrityError, ModelInvalid
from .integrity import verify_file
from .manifest import Manifest
from .session import check_model
from .state import BASELINE_FILE, FP32_FILE, MODEL_FILE, InstalledModel, StateDir

log = logging.getLogger("edge_client.updater")

MAX_REFUSED = 20


class Outcome(enum.StrEnum):
    NOT_MODIFIED = "not_modified"  # 304: the manifest has not changed
    UP_TO_DATE = "up_to_date"  # a new manifest for the model already in current/
    HELD_BACK = "held_back"  # the version this device was rolled back from
    REFUSED = "refused"  # a model this device's onnxruntime refused earlier
    INSTALLED = "installed"


@dataclass(frozen=True)
class UpdateResult:
    outcome: Outcome
    manifest: Manifest | None = None


@dataclass(frozen=True)
class InstallFailure:
    """A new model that did not get past the checks: what the service's install-failure
    report says. `stage`: "checksum" (size or sha256 differ from the manifest), "load"
    (onnxruntime cannot open it) or "inference" (its test inference failed)."""

    manifest: Manifest
    stage: InstallStage
    error: str


class Updater:
    def __init__(
        self,
        api: ApiClient,
        state: StateDir,
        deployment: str,
        *,
        also_fp32: bool = False,
        on_failure: Callable[[InstallFailure], None] | None = None,
    ) -> None:
        self.api = api
        self.state = state
        self.deployment = deployment
        # Also install the fp32 pruned model beside an int8 one, for the benchmark only.
        self.also_fp32 = also_fp32
        # Told of every install that fails its checks (before the error is raised).
        self.on_failure = on_failure

    def poll(self) -> UpdateResult:
        with self.state.lock():
            self.state.recover()
            poll = self.state.load_poll()
            current = self.state.current()
            # Without a model in current/ an ETag would only earn a 304 for nothing.
            etag = poll.etag if current is not None else None
            manifest = self.api.get_manifest(self.deployment, etag)
            if manifest is None:
                return UpdateResult(Outcome.NOT_MODIFIED)
            if current is not None and manifest.sha256 == current.manifest.sha256:
                self.state.update_current_manifest(manifest)
                outcome = Outcome.UP_TO_DATE
            elif manifest.sha256 in poll.held_back:
                log.info("version %s is held back after a rollback", manifest.version)
                outcome = Outcome.HELD_BACK
            elif manifest.sha256 in poll.refused:
                outcome = Outcome.REFUSED
            else:
                try:
                    self._install(manifest, current)
                except IntegrityError as exc:
                    self._failed(manifest, "checksum", exc)
                    raise
                except ModelInvalid as exc:
                    self._failed(manifest, exc.stage, exc)
                    # Remember it: downloading the same unusable bytes on every poll
                    # would only waste the device's bandwidth. A new promotion is tried.
                    poll.refused = [*poll.refused, manifest.sha256][-MAX_REFUSED:]
                    poll.etag = manifest.etag
                    self.state.save_poll(poll)
                    raise
                outcome = Outcome.INSTALLED
            poll.etag = manifest.etag
            self.state.save_poll(poll)
            return UpdateResult(outcome, manifest)

    def _failed(self, manifest: Manifest, stage: InstallStage, error: Exception) -> None:
        log.warning("install of version %s failed at %s: %s", manifest.version, stage, error)
        if self.on_failure is not None:
            self.on_failure(InstallFailure(manifest, stage, str(error)))

    def _install(self, manifest: Manifest, current: InstalledModel | None) -> None:
        staging = self.state.new_staging()
        try:
            model = staging / MODEL_FILE
            self._fetch(manifest.url, manifest.sha256, manifest.size, model)
            if manifest.baseline_url:
                self._fetch_baseline(
                    manifest.baseline_url,
                    manifest.baseline_sha256,
                    current,
                    staging / BASELINE_FILE,
                )
            if self.also_fp32 and manifest.fp32_url:
                try:
                    self._fetch(
                        manifest.fp32_url,
                        manifest.fp32_sha256,
                        manifest.fp32_size,
                        staging / FP32_FILE,
                    )
                except IntegrityError as exc:
                    # Only a comparison in the report: bad bytes never block the model.
                    log.warning("installing without the fp32 model: %s", exc)
            check_model(model, manifest.input_shape, manifest.classes)
            for extra, name in ((BASELINE_FILE, "baseline"), (FP32_FILE, "fp32 model")):
                path = staging / extra
                if path.exists():
                    try:
                        check_model(path, manifest.input_shape, manifest.classes)
                    except ModelInvalid as exc:
                        # It only serves a comparison in the report; it never blocks a model.
                        log.warning("dropping the %s: %s", name, exc)
                        path.unlink()
            self.state.install(staging, manifest)
            log.info("installed version %s (%s)", manifest.version, manifest.sha256[:12])
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _fetch(self, url: str, sha256: str | None, size: int | None, dest: Path) -> None:
        # Partial downloads are named by content, so a restart resumes the same bytes
        # and never appends one artifact to another.
        key = sha256 or "unverified-" + hashlib.sha256(url.encode()).hexdigest()
        part = self.state.download_path(key)
        try:
            self.api.download(url, part, size)
            verify_file(part, sha256=sha256, size=size)
        except IntegrityError:
            part.unlink(missing_ok=True)  # resuming on wrong bytes would fail forever
            raise
        os.replace(part, dest)

    def _fetch_baseline(
        self, url: str, sha: str | None, current: InstalledModel | None, dest: Path
    ) -> None:
        have = current.baseline_path if current is not None else None
        same = current is not None and sha is not None and current.manifest.baseline_sha256 == sha
        if have is not None and same:
            # Same baseline as the model we run: link instead of downloading again. Files
            # in the model folders are never modified in place, so sharing the inode
            # between current/ and previous/ is safe.
            try:
                os.link(have, dest)
            except OSError:
                shutil.copy2(have, dest)
            return
        if sha is None:
            log.warning("manifest has no baseline_sha256: baseline is not verified")
        self._fetch(url, sha, None, dest)
