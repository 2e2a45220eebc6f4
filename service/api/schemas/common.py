"""Constrained types shared by several resources."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

# Deployment names appear in URLs and on devices' disks: keep them boring.
DEPLOYMENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,99}$"
DeploymentName = Annotated[str, StringConstraints(pattern=DEPLOYMENT_NAME_PATTERN)]

# Integers a client sends that reach SQL (offsets, versions, event ids) must fit the
# database's integer columns: SQLite refuses to bind past 64 bits, PostgreSQL's INTEGER is 32.
MAX_DB_INT = 2**31 - 1


def _assume_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC, so say so on the wire.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]
