"""Which architectures the workers can build (functions flush; the caller commits).

The zoo ships with every worker, so its names are always accepted, even before any worker
has reported; installed architectures become known when a worker that has them starts.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.store.models import Architecture, utcnow

# The engine's zoo (pruning.models); a test keeps this list equal to the registry's, since
# the service never imports the engine.
ZOO_ARCHITECTURES = (
    "mobilenet", "mobilenet_v2", "mobilenet_v2_imagenet", "resnet110", "resnet18", "resnet20",
    "resnet32", "resnet34",
    "resnet50", "resnet56", "vgg11", "vgg13", "vgg16", "vgg19",
)  # fmt: skip


def report(session: Session, names: Iterable[tuple[str, str]], worker: str) -> None:
    """Record (name, source) pairs a worker can build."""
    now = utcnow()
    for name, source in names:
        row = session.get(Architecture, name)
        if row is None:
            session.add(Architecture(name=name, source=source, reported_by=worker, reported_at=now))
        else:
            row.source, row.reported_by, row.reported_at = source, worker, now
    session.flush()


def listed(session: Session) -> list[Architecture]:
    """Every known architecture: the zoo, then whatever workers reported, by name."""
    rows = {row.name: row for row in session.scalars(select(Architecture))}
    for name in ZOO_ARCHITECTURES:
        rows.setdefault(
            name, Architecture(name=name, source="zoo", reported_by="", reported_at=None)
        )
    return sorted(rows.values(), key=lambda row: (row.source != "zoo", row.name))


def known_names(session: Session) -> list[str]:
    return [row.name for row in listed(session)]
