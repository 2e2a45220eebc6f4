"""The device's local state folder, and the atomic swap and rollback of its model folders.

Layout::

    <state>/config.json      server, deployment, device id and name, token (mode 0600)
    <state>/poll.json        last manifest ETag, versions held back, last reported sha256
    <state>/current/         model.onnx + manifest.json (+ baseline.onnx): what runs now
    <state>/previous/        the model that ran before: what `rollback` restores
    <state>/downloads/       <sha256>.part files, kept across restarts so downloads resume
    <state>/incoming/        a verified model waiting to become current/ (exists only
                             between verification and swap, or after a crash in between)

Every change is a rename within one filesystem, so at every instant `current/` is either
the complete old model or the complete new one. An install is: (verified staging folder)
-> incoming/, previous/ -> trash, current/ -> previous/, incoming/ -> current/. Because
incoming/ only ever holds a verified model, `recover()` finishes an install interrupted
at any step simply by redoing the remaining renames; rollback is recovered the same way
through its `.swap/` folder.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeprune.contracts.artifacts import BASELINE_ONNX, MODEL_ONNX

from .errors import ConfigError, NothingToRollBack, NotSetUp
from .manifest import Manifest

log = logging.getLogger("edge_client.state")

# Named as the service publishes the fp32 model and its baseline; the variant a device
# chose (int8 too) is installed as MODEL_FILE.
MODEL_FILE = MODEL_ONNX
BASELINE_FILE = BASELINE_ONNX
# The fp32 pruned model beside an int8 model.onnx, only on devices that time it too.
FP32_FILE = "model.fp32.onnx"
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class DeviceConfig:
    server: str
    deployment: str
    device_id: str
    name: str
    token: str


@dataclass
class PollState:
    etag: str | None = None
    # sha256s the operator rolled away from on this device: not reinstalled even though
    # the server still offers them; a newer promotion is still picked up.
    held_back: list[str] = field(default_factory=list)
    reported_sha256: str | None = None
    # sha256s this device's onnxruntime refused: not downloaded again for every poll.
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InstalledModel:
    folder: Path
    manifest: Manifest

    @property
    def model_path(self) -> Path:
        return self.folder / MODEL_FILE

    @property
    def baseline_path(self) -> Path | None:
        path = self.folder / BASELINE_FILE
        return path if path.exists() else None

    @property
    def fp32_path(self) -> Path | None:
        path = self.folder / FP32_FILE
        return path if path.exists() else None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """Write JSON to a temp file beside `path`, fsync, then rename over it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # os.open with the mode: a secret is never readable by others, not even briefly.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


class StateDir:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.config_path = root / "config.json"
        self.poll_path = root / "poll.json"
        self.current_dir = root / "current"
        self.previous_dir = root / "previous"
        self.incoming_dir = root / "incoming"
        self.downloads_dir = root / "downloads"
        self._swap_dir = root / ".swap"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.downloads_dir.mkdir(exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive lock for changes to the model folders.

        `edge-client run` (a service) and `edge-client rollback` (an operator on a shell)
        may run at the same time; without it one's `recover()` could remove the other's
        staging folder mid-download. flock is released by the kernel if the process dies.
        """
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.root / ".lock").open("a") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    # -- config and poll state ---------------------------------------------------------

    def save_config(self, config: DeviceConfig) -> None:
        self.ensure()
        write_json_atomic(self.config_path, asdict(config), mode=0o600)

    def load_config(self) -> DeviceConfig:
        if not self.config_path.exists():
            raise NotSetUp(
                f"not registered: no {self.config_path} (run `edge-client register` first)"
            )
        data = _read_json(self.config_path)
        try:
            return DeviceConfig(**{k: str(data[k]) for k in DeviceConfig.__dataclass_fields__})
        except (KeyError, TypeError) as exc:
            raise ConfigError(f"{self.config_path} is incomplete: missing {exc}") from exc

    def load_poll(self) -> PollState:
        if not self.poll_path.exists():
            return PollState()
        data = _read_json(self.poll_path)
        return PollState(
            etag=data.get("etag"),
            held_back=list(data.get("held_back") or []),
            reported_sha256=data.get("reported_sha256"),
            refused=list(data.get("refused") or []),
        )

    def save_poll(self, poll: PollState) -> None:
        self.ensure()
        write_json_atomic(self.poll_path, asdict(poll))

    # -- model folders -----------------------------------------------------------------

    def _installed(self, folder: Path) -> InstalledModel | None:
        manifest_path = folder / MANIFEST_FILE
        if not (folder / MODEL_FILE).exists() or not manifest_path.exists():
            return None
        return InstalledModel(folder, Manifest.from_json(_read_json(manifest_path)))

    def current(self) -> InstalledModel | None:
        return self._installed(self.current_dir)

    def previous(self) -> InstalledModel | None:
        return self._installed(self.previous_dir)

    def update_current_manifest(self, manifest: Manifest) -> None:
        """Record a new manifest for the same model bytes (e.g. the same job promoted again)."""
        write_json_atomic(self.current_dir / MANIFEST_FILE, manifest.to_json())

    def download_path(self, sha256: str) -> Path:
        self.ensure()
        return self.downloads_dir / f"{sha256}.part"

    def new_staging(self) -> Path:
        """An empty folder, on the same filesystem as current/, to assemble a model in."""
        self.ensure()
        path = self.root / f"incoming.tmp-{secrets.token_hex(4)}"
        path.mkdir()
        return path

    def install(self, staging: Path, manifest: Manifest) -> None:
        """Make a verified staging folder current/; the old current/ becomes previous/."""
        write_json_atomic(staging / MANIFEST_FILE, manifest.to_json())
        for item in staging.iterdir():
            with item.open("rb") as fh:
                os.fsync(fh.fileno())
        if self.incoming_dir.exists():
            shutil.rmtree(self.incoming_dir)  # an older verified model never swapped in
        os.rename(staging, self.incoming_dir)
        self._finish_install()

    def _finish_install(self) -> None:
        trash = self.root / f".trash-{secrets.token_hex(4)}"
        if self.current_dir.exists():
            if self.previous_dir.exists():
                os.rename(self.previous_dir, trash)
            os.rename(self.current_dir, self.previous_dir)
        os.rename(self.incoming_dir, self.current_dir)
        _fsync_dir(self.root)
        shutil.rmtree(trash, ignore_errors=True)

    def rollback(self) -> InstalledModel:
        """Swap current/ and previous/; hold back the version rolled away from."""
        self.recover()
        current, previous = self.current(), self.previous()
        if previous is None:
            raise NothingToRollBack(f"no previous model in {self.previous_dir}")
        if current is not None:
            os.rename(self.current_dir, self._swap_dir)
        os.rename(self.previous_dir, self.current_dir)
        if current is not None:
            os.rename(self._swap_dir, self.previous_dir)
        _fsync_dir(self.root)
        poll = self.load_poll()
        held = [sha for sha in poll.held_back if sha != previous.manifest.sha256]
        if current is not None and current.manifest.sha256 not in held:
            held.append(current.manifest.sha256)
        poll.held_back = held
        self.save_poll(poll)
        return InstalledModel(self.current_dir, previous.manifest)

    def recover(self) -> None:
        """Finish or undo a swap that a crash or power cut interrupted; drop leftovers."""
        if not self.root.exists():
            return
        if self._swap_dir.exists():
            if not self.current_dir.exists():
                os.rename(self._swap_dir, self.current_dir)  # undo a rollback's first step
            elif not self.previous_dir.exists():
                os.rename(self._swap_dir, self.previous_dir)  # finish its last step
            else:
                shutil.rmtree(self._swap_dir)
        if self.incoming_dir.exists():
            log.warning("finishing an interrupted install from %s", self.incoming_dir)
            self._finish_install()
        for leftover in self.root.glob(".trash-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in self.root.glob("incoming.tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            for tmp in self.root.glob(".*.tmp"):
                tmp.unlink()
