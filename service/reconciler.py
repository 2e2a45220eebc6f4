"""Keeps the broker in step with the jobs table (the source of truth). Runs in the API process.

Each pass:
- A `queued` job the broker does not hold is sent again: the broker restarted without
  persistence, a send failed while the broker was down, or a worker died after taking the
  message but before claiming the job. Jobs younger than `enqueue_grace_s` are left alone
  (the API may be between its commit and its send).
- A `queued` job whose message a worker took (Redis: unacked) but never started within
  `start_timeout_s` of taking it is sent again: that worker died or is stuck between the
  two (and its pool process ends itself, see worker/start_deadline.py). Should the old
  delivery start after all, the compare-and-set claim lets one delivery run the job.
- A model upload still `pending` inspection long after an inspection should have finished
  lost its message: it is sent again, and after `max_attempts` timeouts marked invalid.
- A `running` job whose heartbeat is older than `heartbeat_timeout_s` lost its worker
  (SIGKILL, OOM, machine gone; the sqla transport never redelivers such a message, and Redis
  only after the visibility timeout, hours). It goes back to `queued` and is sent again; the
  next delivery claims it with attempts+1 and resumes from its last epoch checkpoint. After
  `max_attempts` deliveries it is failed instead; a job whose cancel was requested is
  canceled.

Every transition is a compare-and-set (infra/store/jobs.py, job_recovery.py, uploads.py), so
several API replicas may run reconcilers side by side: each job is acted on once.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from infra.queue import BrokerSnapshot, BrokerUnavailable, JobQueue
from infra.settings import Settings
from infra.store import job_recovery, jobs, uploads
from infra.store.models import Job, Model, utcnow

log = logging.getLogger(__name__)

WORKER_LOST = "WorkerLost"
NOT_INSPECTED = "no worker inspected this upload; upload it again"


def as_utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes (we only ever store UTC); PostgreSQL returns aware ones.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class ReconcileReport:
    resent: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    canceled: list[str] = field(default_factory=list)
    resent_inspections: list[str] = field(default_factory=list)
    abandoned_inspections: list[str] = field(default_factory=list)


def _queued_needing_send(
    job: Job, snapshot: BrokerSnapshot, now: datetime, settings: Settings
) -> bool:
    last_send = as_utc(job.enqueued_at or job.created_at)
    age = now - last_send
    if job.id in snapshot.ready:
        return False
    if job.id in snapshot.reserved:
        taken = snapshot.taken_at.get(job.id)
        since_taken = now - datetime.fromtimestamp(taken, UTC) if taken else age
        return min(age, since_taken) > timedelta(seconds=settings.start_timeout_s)
    return age > timedelta(seconds=settings.enqueue_grace_s)


def _recover_stale_running(
    factory: sessionmaker[Session], queue: JobQueue, settings: Settings, now: datetime,
    report: ReconcileReport,
) -> None:  # fmt: skip
    stale_before = now - timedelta(seconds=settings.heartbeat_timeout_s)
    with factory() as session:
        running = list(session.scalars(select(Job).where(Job.state == jobs.RUNNING)))
    for job in running:
        beat = job.heartbeat_at or job.started_at
        if beat is not None and as_utc(beat) >= stale_before:
            continue
        with factory.begin() as session:
            if job.cancel_requested:
                if jobs.mark_canceled(session, job.id, job.attempts):
                    report.canceled.append(job.id)
            elif job.attempts >= settings.max_attempts:
                message = (
                    f"the worker running this job stopped sending heartbeats "
                    f"({job.attempts} of {settings.max_attempts} attempts used)"
                )
                if jobs.mark_failed(session, job.id, job.attempts, WORKER_LOST, message):
                    report.failed.append(job.id)
            elif job_recovery.requeue_stale(session, job.id, job.attempts, stale_before):
                report.requeued.append(job.id)
    for job_id in report.requeued:
        try:
            queue.enqueue_job(job_id)
        except BrokerUnavailable:
            log.warning("broker unavailable; job %s stays queued and is sent next pass", job_id)
    if report.requeued:
        log.warning("re-enqueued jobs whose worker went silent: %s", report.requeued)


def _resend_missing_queued(
    factory: sessionmaker[Session], queue: JobQueue, settings: Settings, now: datetime,
    report: ReconcileReport,
) -> None:  # fmt: skip
    with factory() as session:
        queued = list(session.scalars(select(Job).where(Job.state == jobs.QUEUED)))
    queued = [job for job in queued if job.id not in report.requeued]
    if not queued:
        return
    snapshot = queue.snapshot()
    if not snapshot.complete:
        return  # a transport we cannot list: never guess
    for job in queued:
        if not _queued_needing_send(job, snapshot, now, settings):
            continue
        with factory.begin() as session:
            if not job_recovery.claim_resend(session, job.id, job.enqueued_at, now):
                continue
        queue.enqueue_job(job.id)
        report.resent.append(job.id)
    if report.resent:
        log.warning("re-sent queued jobs missing from the broker: %s", report.resent)


def _resend_pending_inspections(
    factory: sessionmaker[Session], queue: JobQueue, settings: Settings, now: datetime,
    report: ReconcileReport, last_sent: dict[str, datetime],
) -> None:  # fmt: skip
    """Uploads whose inspection message was lost: send it again, and give up eventually.

    An inspection takes seconds, so a model still pending after `heartbeat_timeout_s` lost
    its message (or its worker). It is re-sent at most once per timeout; after
    `max_attempts` timeouts it is marked invalid so the client stops waiting and re-uploads.
    """
    timeout = timedelta(seconds=settings.heartbeat_timeout_s)
    overdue = select(Model).where(Model.status == uploads.PENDING, Model.created_at < now - timeout)
    with factory() as session:
        pending = list(session.scalars(overdue))
    if not pending:
        last_sent.clear()
        return
    snapshot = queue.snapshot(settings.inspect_queue_name)
    if not snapshot.complete:
        return
    for model in pending:
        if now - as_utc(model.created_at) > timeout * settings.max_attempts:
            with factory.begin() as session:
                uploads.mark_model_invalid(session, model.id, NOT_INSPECTED)
            report.abandoned_inspections.append(model.id)
            last_sent.pop(model.id, None)
            continue
        sent = last_sent.get(model.id)
        if snapshot.has(model.id) or (sent is not None and now - sent < timeout):
            continue
        queue.enqueue_inspect(model.id)
        last_sent[model.id] = now
        report.resent_inspections.append(model.id)


def reconcile_once(
    factory: sessionmaker[Session],
    queue: JobQueue,
    settings: Settings,
    now: datetime | None = None,
    inspections_sent: dict[str, datetime] | None = None,
) -> ReconcileReport:
    """One pass over running and queued jobs and pending inspections; returns what it did.

    `inspections_sent` remembers when each inspection was last re-sent (the Reconciler keeps
    it between passes); without it every pass may re-send.
    """
    now = now or utcnow()
    report = ReconcileReport()
    _recover_stale_running(factory, queue, settings, now, report)
    try:
        _resend_missing_queued(factory, queue, settings, now, report)
        _resend_pending_inspections(
            factory,
            queue,
            settings,
            now,
            report,
            {} if inspections_sent is None else inspections_sent,
        )
    except BrokerUnavailable as exc:
        log.warning("reconciler cannot reach the broker: %s; retrying next pass", exc)
    return report


class Reconciler:
    """Runs `reconcile_once` every `reconcile_interval_s` on a daemon thread.

    The API starts it in its lifespan and stops it on shutdown:
        reconciler = Reconciler(session_factory, job_queue, settings); reconciler.start()
        ...
        reconciler.stop()
    """

    def __init__(self, factory: sessionmaker[Session], queue: JobQueue, settings: Settings) -> None:
        self.factory = factory
        self.queue = queue
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._inspections_sent: dict[str, datetime] = {}

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="edgeprune-reconciler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.reconcile_interval_s):
            try:
                reconcile_once(
                    self.factory, self.queue, self.settings, inspections_sent=self._inspections_sent
                )
            except Exception:
                # One bad pass (DB restarting, ...) must not end reconciliation for good.
                log.exception("reconcile pass failed")

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
