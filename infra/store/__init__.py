"""The job store: SQLAlchemy 2 models and sessions. The database is the source of truth."""
