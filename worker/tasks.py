"""The Celery tasks: parse the id, hand over to the code that does the work, report.

Registered by *name*; the API sends them with `send_task` without importing this module.
"""

from __future__ import annotations

from celery import Task

from infra.queue import INSPECT_MODEL_TASK, RUN_JOB_TASK
from infra.settings import get_settings
from worker.app import app
from worker.context import get_context, worker_name
from worker.inspect_model import inspect_uploaded_model
from worker.run_job import run_next_job
from worker.start_deadline import start_deadline


@app.task(name=RUN_JOB_TASK, bind=True)
def run_job(self: Task, job_id: str) -> str:
    """Run one queued job to a terminal state, first arrived first (see run_next_job)."""
    # Armed before the first connection: a process stuck before its run starts is ended.
    with start_deadline(get_settings().start_timeout_s):
        return run_next_job(get_context(), str(job_id), worker_name(self.request.hostname))


@app.task(name=INSPECT_MODEL_TASK)
def inspect_model(model_id: str) -> str:
    """Check an uploaded checkpoint and record its params/FLOPs (or why it is invalid)."""
    return inspect_uploaded_model(get_context(), str(model_id))
