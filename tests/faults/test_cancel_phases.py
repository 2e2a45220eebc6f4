"""Cancel during each phase → `canceled` promptly, nothing published, the worker free for
the next job.

The request has to land *inside* a given phase, and pruning and exporting last well under a
second. So the test does not race the worker: a PostgreSQL trigger on `job_events` sets the
job's `cancel_requested` (the flag `POST /v1/jobs/{id}/cancel` sets) in the same transaction
that records the phase's first progress event. The worker must notice it at its next check:
a training step (calibrating, structure and weight learning; pruning is followed by weight
learning's first step) or the check before publishing (exporting). Without that last check a
cancel asked for while exporting ended in `succeeded`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from infra.store.models import Dataset, Model
from tests.faults.conftest import MakeStack
from tests.worker.tinyjob import add_tiny_job
from worker.hooks import checkpoint_key

pytestmark = pytest.mark.integration

PHASES = ("calibrating", "structure_learning", "pruning", "weight_learning", "exporting")
# The cancel flag is read at most once a second (worker/hooks.py), a step takes milliseconds.
PROMPT = timedelta(seconds=5)

CANCEL_PLAN = (
    """CREATE TABLE test_cancel_plan (
        job_id varchar PRIMARY KEY, phase varchar NOT NULL, requested_at timestamptz
    )""",
    """CREATE FUNCTION test_cancel_in_phase() RETURNS trigger AS $$
    BEGIN
        IF NEW.kind = 'progress' THEN
            UPDATE test_cancel_plan SET requested_at = clock_timestamp()
            WHERE job_id = NEW.job_id AND phase = NEW.data->>'phase' AND requested_at IS NULL;
            IF FOUND THEN
                UPDATE jobs SET cancel_requested = true
                WHERE id = NEW.job_id AND state = 'running';
            END IF;
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER test_cancel_in_phase AFTER INSERT ON job_events
        FOR EACH ROW EXECUTE FUNCTION test_cancel_in_phase()""",
)


def test_cancel_in_every_phase_is_prompt_and_frees_the_worker(
    fault_stack: MakeStack, tmp_path: Path
) -> None:
    stack = fault_stack()
    with stack.sessions.begin() as session:
        for statement in CANCEL_PLAN:
            session.execute(text(statement))
    planned: dict[str, str] = {}
    for phase in PHASES:
        job_id = add_tiny_job(stack.sessions, stack.storage, tmp_path / phase, batch_size=16)
        with stack.sessions.begin() as session:
            session.execute(
                text("INSERT INTO test_cancel_plan (job_id, phase) VALUES (:j, :p)"),
                {"j": job_id, "p": phase},
            )
        planned[job_id] = phase
    worker = stack.start_worker()
    for job_id in planned:  # one worker, concurrency 1: the jobs run one after another
        stack.submit(job_id)

    for job_id, phase in planned.items():
        assert stack.wait_state(job_id, {"succeeded", "failed", "canceled"}, 120) == "canceled", (
            f"cancel during {phase} was not honoured"
        )
    assert worker.process.poll() is None  # the same worker process served all five

    with stack.sessions() as session:
        plan = session.execute(text("SELECT job_id, requested_at FROM test_cancel_plan"))
        requested: dict[str, datetime | None] = {row[0]: row[1] for row in plan}
    for job_id, phase in planned.items():
        asked, finished = requested[job_id], stack.job(job_id).finished_at
        assert asked is not None, f"the job never reached {phase}"
        assert finished is not None and finished - asked < PROMPT, phase
        # (Where exactly it stops depends on the machine: the flag is read at most once a
        # second, and a tiny job crosses a whole phase in less. The deadline is the promise.)
        assert stack.events(job_id)[-1][1:] == ("state", {"state": "canceled"}), phase
        assert not stack.artifact_rows(job_id), phase
        assert not stack.storage.key_exists(checkpoint_key(job_id)), phase
    # Not even orphan blobs: the exporting job was stopped before uploading anything, so the
    # store holds the jobs' inputs and nothing else.
    with stack.sessions() as session:
        inputs = set(session.scalars(select(Model.sha256))) | set(
            session.scalars(select(Dataset.sha256))
        )
    blobs = {p.name for p in Path(stack.storage.root, "sha256").rglob("*") if p.is_file()}
    assert blobs == inputs
