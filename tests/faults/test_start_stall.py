"""A pool process that took a job's message but is stuck before the job starts (here: its
claim waits on a row lock that is never released in time) is ended after `start_timeout_s`;
the message is handed back (and re-sent by the reconciler) and, once the way is clear, the
job runs exactly once."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from infra.store.models import Job
from service.reconciler import Reconciler
from tests.faults.conftest import MakeStack
from tests.faults.harness import TERMINAL, child_pids
from tests.integration.workerproc import wait_for
from tests.worker.tinyjob import add_tiny_job

pytestmark = pytest.mark.integration


def test_a_pool_process_stuck_before_the_job_starts_is_replaced_and_the_job_runs_once(
    fault_stack: MakeStack,
) -> None:
    stack = fault_stack(start_timeout_s="3")
    job_id = add_tiny_job(stack.sessions, stack.storage, stack.tmp / "in")
    worker = stack.start_worker()
    stuck = wait_for(lambda: child_pids(worker.process.pid), 60, "the worker's pool process")
    reconciler = Reconciler(stack.sessions, stack.queue, stack.settings)  # as in the API
    reconciler.start()
    blocker = stack.sessions()
    try:
        # Another transaction holds the job's row: the claim's UPDATE waits on it.
        blocker.execute(select(Job).where(Job.id == job_id).with_for_update())
        stack.queue.enqueue_job(job_id)

        def replaced() -> bool:
            return not stuck & child_pids(worker.process.pid)

        wait_for(replaced, 60, f"the stuck pool process(es) {stuck} to be ended")
        blocker.rollback()
    finally:
        blocker.close()
        try:
            assert stack.wait_state(job_id, TERMINAL, 180) == "succeeded"
        finally:
            reconciler.stop()
    job = stack.job(job_id)
    assert job.attempts == 1
    started = [
        d for _, kind, d in stack.events(job_id) if kind == "state" and d["state"] == "running"
    ]
    assert len(started) == 1, started
    assert len(stack.artifact_rows(job_id)) == 7  # published once
    assert worker.process.poll() is None  # the worker itself kept serving
