"""The shared core of the service and the workers, torch-free: the job store (SQLAlchemy +
Alembic migrations), content-addressed artifact storage, settings, the Celery/broker
configuration and the queue client, and the watch that ends a child when `edgeprune serve`
goes. The API (`service`) and the workers (`worker`) both build on it; it imports neither.
"""
