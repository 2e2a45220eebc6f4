"""The worker's Celery app: `celery -A worker.app worker` or `edgeprune worker`.

The configuration itself lives in `infra.queue.celery_config`, shared with the API that
sends the tasks. It is read lazily (when the app first needs it), so importing this module
creates no settings object and opens no connection.
"""

from __future__ import annotations

from celery import Celery

from infra.queue import celery_config
from infra.settings import get_settings

app = Celery("edgeprune", include=["worker.tasks"])
app.add_defaults(lambda: celery_config(get_settings()))
