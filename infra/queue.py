"""The Celery configuration (in one place) and the queue client the API uses.

The API enqueues by task *name* with `send_task`, so it never imports the worker's code (or
torch). `worker/app.py` builds its app from the same `create_celery_app`, so both sides agree
on serializer, routes and broker options by construction.

The broker only carries wake-ups; the database is the source of truth. `JobQueue.snapshot`
lists the job ids the broker holds so the reconciler can re-send what went missing.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as KombuOperationalError

from infra.settings import Settings

log = logging.getLogger("edgeprune.queue")

RUN_JOB_TASK = "edgeprune.run_job"
INSPECT_MODEL_TASK = "edgeprune.inspect_model"
# Inspecting a checkpoint loads it and counts FLOPs once: minutes at most, even on a CPU.
INSPECT_TIME_LIMIT_S = 600
# Margin between Celery's soft limit (the task records a clean failure) and the hard kill.
HARD_LIMIT_MARGIN_S = 300


class BrokerUnavailable(Exception):
    """The broker could not be reached; the job stays queued and the reconciler re-sends it."""


def broker_kind(broker_url: str) -> str:
    scheme = broker_url.split("://", 1)[0]
    if scheme.startswith("sqla+"):
        return "sqla"
    if scheme in ("redis", "rediss", "redis+socket"):
        return "redis"
    return scheme


def broker_transport_options(settings: Settings) -> dict[str, Any]:
    kind = broker_kind(settings.resolved_broker_url())
    if kind == "redis":
        # An unacked message is handed to another worker after this long; it must outlast the
        # longest job or a healthy long job would be delivered twice. (Dead workers are found
        # much sooner by the heartbeat; see service/reconciler.py.)
        return {"visibility_timeout": settings.job_time_limit_s + 3600}
    if kind == "sqla":
        # These options go to sqlalchemy.create_engine: wait for SQLite's lock instead of
        # failing while the API, the gpu worker and the inspect worker share the file.
        return {"connect_args": {"timeout": 30}}
    return {}


def celery_config(settings: Settings) -> dict[str, Any]:
    """Every Celery setting of EdgePrune, for both the API (sending) and the workers."""
    return {
        "broker_url": settings.resolved_broker_url(),
        "broker_transport_options": broker_transport_options(settings),
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        # Lifecycle lives in our jobs table; no result backend, so no ambiguous PENDING.
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task returns and requeue if the worker process dies: safe because the
        # task is idempotent (keyed by job id, lease-fenced, outputs temp-then-renamed).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One job per worker process at a time, and no job waiting in a busy worker's buffer.
        "worker_prefetch_multiplier": 1,
        # A fresh child per job: GPU memory and allocator fragmentation go with the process.
        "worker_max_tasks_per_child": 1,
        "task_soft_time_limit": settings.job_time_limit_s,
        "task_time_limit": settings.job_time_limit_s + HARD_LIMIT_MARGIN_S,
        "task_annotations": {
            INSPECT_MODEL_TASK: {
                "soft_time_limit": INSPECT_TIME_LIMIT_S,
                "time_limit": INSPECT_TIME_LIMIT_S + 60,
            }
        },
        "task_routes": {
            RUN_JOB_TASK: {"queue": settings.queue_name},
            INSPECT_MODEL_TASK: {"queue": settings.inspect_queue_name},
        },
        "task_default_queue": settings.queue_name,
        # A long job survives a broker blip: the DB lease (not Celery) fences a duplicate run.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
        "enable_utc": True,
    }


def create_celery_app(settings: Settings, *, main: str = "edgeprune") -> Celery:
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app


def prepare_broker(settings: Settings) -> None:
    """Create the embedded (`sqla+`) broker's tables and queues once, from one process,
    before the API and the workers start; nothing to do for other brokers.

    kombu's sqla transport creates them on first use in every process, and two processes
    creating the same queue row at once leave one with an IntegrityError (the queue name is
    unique: 1 of 45 processes racing on a fresh file here). A worker that meets it while
    declaring its queue at start exits, which `edgeprune serve` then reports and restarts.
    """
    if broker_kind(settings.resolved_broker_url()) != "sqla":
        return
    app = create_celery_app(settings)
    with app.connection_for_write() as conn:
        channel = conn.default_channel
        for name in (settings.queue_name, settings.inspect_queue_name):
            channel.queue_declare(queue=name)


def _task_id(entity_id: str) -> str:
    # The entity id leads the task id, so the broker's messages can be mapped back to jobs
    # without decoding bodies; the suffix keeps each send unique.
    return f"{entity_id}.{uuid.uuid4().hex[:12]}"


def entity_id_from_message(message: dict[str, Any]) -> str | None:
    """The job/model id of a Celery protocol-2 message envelope (as kombu stores it)."""
    headers = message.get("headers") or {}
    task_id = headers.get("id")
    if isinstance(task_id, str) and "." in task_id:
        return task_id.split(".", 1)[0]
    # A message sent by something else: fall back to the first positional argument.
    try:
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (KeyError, ValueError, TypeError, IndexError):
        return None


@dataclass(frozen=True)
class BrokerSnapshot:
    """Job ids found in the broker: `ready` waits in the queue, `reserved` is taken by a worker
    but not acknowledged yet, `taken_at` says when (Unix time of the latest take, where the
    transport records it). `complete` is False when the transport cannot be listed."""

    ready: frozenset[str] = field(default_factory=frozenset)
    reserved: frozenset[str] = field(default_factory=frozenset)
    complete: bool = True
    taken_at: Mapping[str, float] = field(default_factory=dict)

    def has(self, job_id: str) -> bool:
        return job_id in self.ready or job_id in self.reserved


def _ids(raw_messages: Iterable[Any], unwrap: bool = False) -> Iterator[str]:
    for raw in raw_messages:
        try:
            decoded = json.loads(raw)
        except (TypeError, ValueError):
            continue
        message = decoded[0] if unwrap and isinstance(decoded, list) and decoded else decoded
        if isinstance(message, dict) and (entity := entity_id_from_message(message)):
            yield entity


class JobQueue:
    """The API's handle on the broker: send jobs and inspections, list what is queued."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or create_celery_app(settings)
        self.kind = broker_kind(settings.resolved_broker_url())
        # Request threads send while the reconciler thread lists the queue, and kombu's
        # connections and channels are not thread-safe (its SQLAlchemy transport also shares
        # one engine per URL): one broker operation at a time per process, a precaution that
        # costs little since sends are a few per job, not a hot path.
        self._lock = threading.Lock()

    def _send(self, task: str, entity_id: str, queue: str) -> str:
        with self._lock:
            try:
                return self._send_unlocked(task, entity_id, queue)
            except BrokerUnavailable:
                raise  # kombu has already retried a broker that does not answer
            except Exception as exc:
                # A pooled producer on a channel its transport already closed or dropped
                # fails once ("channel disconnected", or AttributeError on the dropped
                # connection) while the broker is fine: start over from fresh connections.
                log.warning("send of %s failed on a pooled channel (%r); retrying", task, exc)
                self.app.close()
                try:
                    return self._send_unlocked(task, entity_id, queue)
                except BrokerUnavailable:
                    raise
                except Exception as again:
                    raise BrokerUnavailable(f"broker unreachable: {again!r}") from again

    def _send_unlocked(self, task: str, entity_id: str, queue: str) -> str:
        task_id = _task_id(entity_id)
        try:
            self.app.send_task(
                task,
                args=[entity_id],
                task_id=task_id,
                queue=queue,
                retry=True,
                # Bounded: an API request must not hang on a dead broker.
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
            )
        except (KombuOperationalError, OSError) as exc:
            raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
        return task_id

    def enqueue_job(self, job_id: str) -> str:
        """Send `edgeprune.run_job(job_id)` to the gpu queue; returns the Celery task id."""
        return self._send(RUN_JOB_TASK, job_id, self.settings.queue_name)

    def enqueue_inspect(self, model_id: str) -> str:
        """Send `edgeprune.inspect_model(model_id)` to the inspect queue."""
        return self._send(INSPECT_MODEL_TASK, model_id, self.settings.inspect_queue_name)

    def ping(self) -> None:
        """Raise BrokerUnavailable unless the broker answers (readiness probe)."""
        with self._lock:
            self._ping_unlocked()

    def _ping_unlocked(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)
                if self.kind == "redis":
                    conn.default_channel.client.ping()
        except Exception as exc:  # kombu/redis/sqlalchemy each raise their own types
            raise BrokerUnavailable(f"broker unreachable: {exc}") from exc

    def snapshot(self, queue: str | None = None) -> BrokerSnapshot:
        """The job ids the broker holds for `queue` (default: the gpu queue)."""
        with self._lock:
            return self._snapshot_unlocked(queue or self.settings.queue_name)

    def _snapshot_unlocked(self, queue: str) -> BrokerSnapshot:
        try:
            with self.app.connection_for_read() as conn:
                conn.ensure_connection(max_retries=1, timeout=2)  # fail fast, retry next pass
                channel = conn.default_channel
                if self.kind == "redis":
                    return self._redis_snapshot(channel, queue)
                if self.kind == "sqla":
                    return self._sqla_snapshot(channel, queue)
        except Exception as exc:
            raise BrokerUnavailable(f"broker unreachable: {exc}") from exc
        return BrokerSnapshot(complete=False)

    def broker_has_job(self, job_id: str) -> bool:
        return self.snapshot().has(job_id)

    @staticmethod
    def _redis_snapshot(channel: Any, queue: str) -> BrokerSnapshot:
        client = channel.client
        # kombu keeps one list per priority step; messages without a priority go to the first.
        list_keys = {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}
        ready: set[str] = set()
        for key in list_keys:
            ready.update(_ids(client.lrange(key, 0, -1)))
        # Unacked messages of every queue live in one hash (delivery tag -> [message, exchange,
        # routing_key]); a sorted set scores each tag with the time a worker took it.
        taken_at: dict[str, float] = {}
        scores = dict(client.zrange(channel.unacked_index_key, 0, -1, withscores=True))
        for tag, raw in client.hgetall(channel.unacked_key).items():
            for entity in _ids([raw], unwrap=True):
                taken = float(scores.get(tag, 0.0))
                taken_at[entity] = max(taken, taken_at.get(entity, taken))
        return BrokerSnapshot(
            ready=frozenset(ready), reserved=frozenset(taken_at), taken_at=taken_at
        )

    @staticmethod
    def _sqla_snapshot(channel: Any, queue: str) -> BrokerSnapshot:
        # Taken messages stay in the table with visible=False forever (even after the ack),
        # so only visible rows say anything: they are the ready ones.
        message_cls = channel.message_cls
        rows = channel._query_all(queue).filter(message_cls.visible.is_(True)).all()
        try:
            ready = frozenset(_ids(row.payload for row in rows))
        finally:
            channel.session.commit()  # end the read transaction; SQLite writers need the lock
        return BrokerSnapshot(ready=ready)

    def close(self) -> None:
        self.app.close()
