"""ORM tables. Ids are short random strings with a type prefix (mdl_, dst_, job_, dev_, tok_)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from edgeprune.contracts.jobs import JobState


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012 - SQLAlchemy API


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("tok"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "admin" | "device"
    # sha256 hex of the secret; the secret itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    device_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Model(Base):
    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("mdl"))
    name: Mapped[str] = mapped_column(String(200))
    # Left out at upload, these are filled by the inspection from the checkpoint's own
    # record (NULL while pending, and on an invalid model that did not record them).
    arch: Mapped[str | None] = mapped_column(String(64), nullable=True)
    num_classes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    input_shape: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)  # [C, H, W]
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))  # "pt" | "safetensors"
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|ready|invalid
    params: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    flops: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # {metric: [largest reachable reduction at channel multiple 1, 2, ...]}, from the
    # inspection; NULL before it, and for models inspected before limits were recorded.
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("dst"))
    name: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))  # "npz" | "zip" | "tar.gz"
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[int] = mapped_column(Integer)
    classes: Mapped[list[Any]] = mapped_column(JSON)
    input_shape: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("job"))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"))
    # edgeprune.contracts.jobs.JobState
    state: Mapped[str] = mapped_column(String(16), default=JobState.QUEUED.value, index=True)
    # edgeprune.contracts.jobs.Phase (null until a worker starts the run)
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    # The request as accepted: target, epochs, batch_size, lr, seed.
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    deployment: Mapped[str | None] = mapped_column(String(100), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Headline numbers copied from the report on success (for listings and the dashboard).
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error_type: Mapped[str | None] = mapped_column(String(100), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Highest JobEvent.seq handed out. Bumped with an UPDATE before each event insert, so the
    # row lock serialises concurrent appends: seqs have no gaps and commit in order.
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class JobEvent(Base):
    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 1, 2, 3 ... per job: the SSE event id
    kind: Mapped[str] = mapped_column(String(32))  # "progress" | "state" | "epoch" | "log"
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobArtifact(Base):
    __tablename__ = "job_artifacts"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)  # e.g. "model.onnx"
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(100))


class Deployment(Base):
    __tablename__ = "deployments"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    # The version every device runs, except those inside a staged rollout's percentage.
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # A staged rollout in progress: devices whose id hashes below `rollout_percent` (1..99)
    # get `rollout_version`; both are None when no stage is in progress.
    rollout_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    rollout_percent: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeploymentVersion(Base):
    """Every promotion is a new version; rollback re-points `current_version`."""

    __tablename__ = "deployment_versions"

    deployment: Mapped[str] = mapped_column(ForeignKey("deployments.name"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Device(Base):
    __tablename__ = "devices"
    # At most one live (unrevoked) device per name: re-registering a name revokes the old one.
    __table_args__ = (
        Index(
            "uq_devices_live_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=lambda: new_id("dev"))
    name: Mapped[str] = mapped_column(String(200))
    deployment: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    current_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The latest successful benchmark report.
    last_report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # The latest failed install ({version, sha256, stage, error, at}); cleared once the device
    # reports running that version or a newer one.
    install_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    # Set by revoke (or by a forced re-registration of the name): its tokens are revoked too.
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class DeviceReport(Base):
    __tablename__ = "device_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # "ok" (a benchmark of the installed model) | "install_failed" (data says at which stage)
    status: Mapped[str] = mapped_column(String(32), default="ok", server_default="ok")
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Architecture(Base):
    """An architecture some worker can build: a zoo name or an installed `edgeprune.models`
    entry point. Workers write these at start; the API accepts exactly these names."""

    __tablename__ = "architectures"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))  # "zoo" | "installed"
    reported_by: Mapped[str] = mapped_column(String(200))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class PollGeneration(Base):
    """One row of counters that API processes read to know their poll caches are still right.

    Every write that changes a manifest answer bumps `deployments` (promote, widen, rollback)
    and every revocation bumps `credentials`, in the same transaction as the change: a
    process that reads a counter after the commit sees the new value (service/api/poll/).
    """

    __tablename__ = "poll_generation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployments: Mapped[int] = mapped_column(BigInteger, default=0)
    credentials: Mapped[int] = mapped_column(BigInteger, default=0)
