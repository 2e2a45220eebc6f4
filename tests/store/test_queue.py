"""The queue client: one Celery configuration, sends by name, readiness, broker listing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from infra.queue import (
    INSPECT_MODEL_TASK,
    RUN_JOB_TASK,
    BrokerUnavailable,
    JobQueue,
    celery_config,
    entity_id_from_message,
    prepare_broker,
)
from infra.settings import Settings


def test_celery_config_is_explicit_about_delivery_guarantees() -> None:
    settings = Settings(broker_url="redis://127.0.0.1:6379/0", job_time_limit_s=7200)
    conf = celery_config(settings)
    assert conf["task_serializer"] == "json" and conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["worker_prefetch_multiplier"] == 1 and conf["worker_max_tasks_per_child"] == 1
    assert conf["task_soft_time_limit"] == 7200 < conf["task_time_limit"]
    assert conf["broker_transport_options"]["visibility_timeout"] > 7200
    assert conf["task_routes"][RUN_JOB_TASK] == {"queue": "gpu"}
    assert conf["task_routes"][INSPECT_MODEL_TASK] == {"queue": "inspect"}
    # SQLite transport options go to create_engine: no Redis-only keys there.
    sqla = celery_config(Settings(broker_url="sqla+sqlite:////tmp/x.db"))
    assert "visibility_timeout" not in sqla["broker_transport_options"]


def test_sends_by_name_and_lists_what_is_queued(redis_url: str, unique_suffix: str) -> None:
    settings = Settings(
        broker_url=redis_url,
        queue_name=f"gpu-q-{unique_suffix}",
        inspect_queue_name=f"inspect-q-{unique_suffix}",
    )
    queue = JobQueue(settings)
    client = redis.Redis.from_url(redis_url)
    try:
        queue.ping()
        task_id = queue.enqueue_job("job_abc")
        assert task_id.startswith("job_abc.")
        queue.enqueue_inspect("mdl_xyz")
        assert queue.snapshot().ready == {"job_abc"}
        assert queue.snapshot(settings.inspect_queue_name).ready == {"mdl_xyz"}
        assert queue.broker_has_job("job_abc") and not queue.broker_has_job("job_other")
    finally:
        queue.close()
        for key in client.scan_iter(f"*{unique_suffix}*"):
            client.delete(key)


def test_sqlite_transport_round_trip(tmp_path: Path) -> None:
    queue = JobQueue(Settings(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    try:
        queue.ping()
        queue.enqueue_job("job_1")
        queue.enqueue_job("job_2")
        assert queue.snapshot().ready == {"job_1", "job_2"}
    finally:
        queue.close()


def test_the_embedded_broker_is_prepared_once_before_its_users_start(tmp_path: Path) -> None:
    """serve creates the sqla broker's tables and both queues up front, so the API and the
    workers only ever read those rows (racing to create one fails a process)."""
    import sqlite3

    path = tmp_path / "broker.db"
    settings = Settings(broker_url=f"sqla+sqlite:///{path}")
    prepare_broker(settings)
    prepare_broker(settings)  # a restart: nothing new
    with sqlite3.connect(path) as db:
        names = sorted(row[0] for row in db.execute("SELECT name FROM kombu_queue"))
    assert names == ["gpu", "inspect"]
    # The prepared broker works as before.
    queue = JobQueue(settings)
    try:
        queue.enqueue_inspect("mdl_1")
        assert queue.snapshot(settings.inspect_queue_name).ready == {"mdl_1"}
    finally:
        queue.close()
    # Other brokers create their queues on use without a shared table: nothing is touched.
    prepare_broker(Settings(broker_url="redis://127.0.0.1:1/0"))


@pytest.mark.parametrize("how", ["closed", "dropped"])
def test_a_send_survives_a_stale_pooled_channel(tmp_path: Path, how: str) -> None:
    """kombu can hand out a pooled producer whose channel is gone (closed, or dropped by its
    transport): the send fails with "channel disconnected" (once seen as AttributeError on
    the dropped connection) although the broker is fine. The queue starts over from fresh
    connections instead of refusing the upload or the job."""
    queue = JobQueue(Settings(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.db'}"))
    try:
        queue.enqueue_job("job_1")
        with queue.app.producer_or_acquire() as producer:
            channel = producer.channel
            if how == "closed":
                channel.close()
            else:
                channel.connection.close_channel(channel)
        queue.enqueue_job("job_2")
        queue.enqueue_inspect("mdl_1")
        assert queue.snapshot().ready == {"job_1", "job_2"}
    finally:
        queue.close()


def test_unreachable_broker_fails_fast(tmp_path: Path) -> None:
    queue = JobQueue(Settings(broker_url="redis://127.0.0.1:1/0"))
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        queue.enqueue_job("job_1")
    with pytest.raises(BrokerUnavailable):
        queue.ping()
    with pytest.raises(BrokerUnavailable):
        queue.snapshot()
    assert time.monotonic() - started < 10  # an API request must not hang on it
    queue.close()


def test_message_ids_map_back_to_entities() -> None:
    assert entity_id_from_message({"headers": {"id": "job_1.abc"}}) == "job_1"
    body = "W1siam9iXzIiXSwge30sIHt9XQ=="  # base64 of [["job_2"], {}, {}]
    message = {"headers": {"id": "x"}, "body": body, "properties": {"body_encoding": "base64"}}
    assert entity_id_from_message(message) == "job_2"
    assert entity_id_from_message({"headers": {}}) is None
