"""The poll generation: two counters that tell API processes when their poll caches are stale.

The device poll path (service/api/poll/) keeps token identities and rendered manifests in
memory. Each write that would change what a poll answers bumps a counter in its own
transaction, so the new value becomes visible exactly when the change does; a process that
reads the counters after that commit knows its caches are stale.

- `deployments`: promote, widen, rollback (everything that moves a deployment's versions).
- `credentials`: revoking a token or a device (and so deleting one, or replacing it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.orm import Session

from infra.store.models import PollGeneration

ROW = 1


@dataclass(frozen=True, slots=True)
class Generation:
    deployments: int
    credentials: int


def _bump(session: Session, column: str) -> None:
    counter = getattr(PollGeneration, column)
    session.execute(
        update(PollGeneration)
        .where(PollGeneration.id == ROW)
        .values({column: counter + 1})
        .execution_options(synchronize_session=False)
    )


def deployments_changed(session: Session) -> None:
    _bump(session, "deployments")


def credentials_changed(session: Session) -> None:
    _bump(session, "credentials")


# Plain SQL: the poll path runs it on a raw driver connection of its own (sqlite3, or an
# asynchronous psycopg connection), once per batch of polls.
READ_SQL = f"SELECT deployments, credentials FROM {PollGeneration.__tablename__} WHERE id = {ROW}"
