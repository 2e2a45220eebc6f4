"""Settings of the API and worker deployables, read from EDGEPRUNE_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EDGEPRUNE_", extra="ignore")

    # Where the embedded default keeps everything; the URLs below default to paths inside it.
    data_dir: Path = Path("edgeprune-data")
    database_url: str | None = None  # default: sqlite:///<data_dir>/edgeprune.db
    broker_url: str | None = None  # default: sqla+sqlite:///<data_dir>/broker.db
    artifacts_url: str | None = None  # default: <data_dir>/artifacts (any fsspec URL)

    # Public base URL put into manifests (devices download from it); default: the request's.
    public_url: str | None = None

    max_upload_bytes: int = 512 * 1024 * 1024
    # An uploaded dataset archive's expanded size and file count: checked at upload, and the
    # worker extracts with the same bounds. Raise them (with max_upload_bytes) for big data.
    max_dataset_bytes: int = 16 * 1024**3
    max_dataset_files: int = 100_000
    max_request_bytes: int = 1024 * 1024
    # Jobs whose running worker has not written a heartbeat for this long are re-enqueued
    # (EDGEPRUNE_HEARTBEAT_TIMEOUT_S). A killed worker's job is running again within
    # timeout + reconcile interval (+ the broker's hand-over): under 30 s by default. The
    # heartbeat comes from its own thread every interval, so a long training step is not a
    # missed heartbeat; keep the timeout at several intervals.
    heartbeat_timeout_s: float = 20.0
    heartbeat_interval_s: float = 5.0
    reconcile_interval_s: float = 8.0
    # A pool process that took a job's message must claim a job (and start its heartbeat)
    # within this long, or it is ended and the message handed back; the reconciler re-sends
    # a queued job whose message a worker took this long ago (EDGEPRUNE_START_TIMEOUT_S).
    # Claiming takes milliseconds; keep it above SQLite's 30 s busy timeout.
    start_timeout_s: float = Field(default=60.0, gt=0)
    # A queued job missing from the broker is re-sent only once it is older than this (the
    # API may be between committing the job and sending its message).
    enqueue_grace_s: float = 30.0
    # A job that fails this many deliveries (worker deaths) is marked failed.
    max_attempts: int = 3
    # How long POST /v1/models waits for a worker to inspect the checkpoint.
    inspect_wait_s: float = 60.0
    job_time_limit_s: int = 48 * 3600
    # A running job that completes no training step for this long is failed as stalled (a
    # thread stuck in a native kernel) and its worker process replaced. Loading the data and
    # the final evaluation and export count too, so leave room for large datasets.
    stall_timeout_s: float = Field(default=900.0, gt=0)
    # A device not heard from (poll or report) for this long is shown as stale, not online.
    # Devices poll every 5 minutes by default (`edge-client run --interval`): three missed
    # polls. Polls refresh last-seen at most once a minute.
    device_stale_after_s: float = Field(default=900.0, gt=0)
    queue_name: str = "gpu"
    inspect_queue_name: str = "inspect"
    unauthenticated_rate_limit_per_minute: int = Field(default=120, ge=1)
    # Freeze the API's startup heap out of the garbage collector's sight (service/api/heap.py;
    # EDGEPRUNE_API_FREEZE_HEAP). Off only where the API is started and stopped many times in
    # one larger process, where the collection before freezing walks that whole heap.
    api_freeze_heap: bool = True

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'edgeprune.db').resolve()}"

    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    def resolved_artifacts_url(self) -> str:
        return self.artifacts_url or str((self.data_dir / "artifacts").resolve())


@lru_cache
def get_settings() -> Settings:
    return Settings()
