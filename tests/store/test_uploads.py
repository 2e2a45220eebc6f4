"""Uploaded checkpoints and datasets in the store: inspection outcomes move a pending model
only, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from infra.store import uploads
from infra.store.models import Dataset, Model, utcnow

Outcome = tuple[str, int | None, int | None, str | None]


def _model(session: Session, created_at: datetime | None = None) -> str:
    return uploads.add_model(
        session, name="m", arch="vgg11", num_classes=10, input_shape=(1, 32, 32),
        filename="m.pt", format="pt", sha256="c" * 64, size=12, created_at=created_at,
    ).id  # fmt: skip


def _outcome(sessions: sessionmaker[Session], model_id: str) -> Outcome:
    """status, params, flops, error"""
    with sessions() as session:
        model = session.get_one(Model, model_id)
        return model.status, model.params, model.flops, model.error


def test_a_model_is_recorded_pending(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        model_id = _model(session)
    assert model_id.startswith("mdl_")
    assert _outcome(sessions, model_id) == ("pending", None, None, None)
    with sessions() as session:
        model = session.get_one(Model, model_id)
        stored = (model.arch, model.num_classes, model.input_shape, model.sha256, model.size)
    assert stored == ("vgg11", 10, [1, 32, 32], "c" * 64, 12)


def test_ready_sets_counts_once_and_a_late_answer_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        model_id = _model(session)
    with sessions.begin() as session:
        assert uploads.mark_model_ready(session, model_id, params=1234, flops=56789)
        assert not uploads.mark_model_ready(session, model_id, params=1, flops=1)
        assert not uploads.mark_model_invalid(session, model_id, "too late")
        assert not uploads.drop_pending_model(session, model_id)
    assert _outcome(sessions, model_id) == ("ready", 1234, 56789, None)


def test_invalid_keeps_one_line_and_wins_over_a_late_ready(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        model_id, long_one = _model(session), _model(session)
    with sessions.begin() as session:
        assert uploads.mark_model_invalid(session, model_id, "size mismatch\n  for conv1\n" * 2)
        assert not uploads.mark_model_ready(session, model_id, params=1, flops=1)
        assert uploads.mark_model_invalid(session, long_one, "x" * 5000 + "\n")
    assert _outcome(sessions, model_id) == (
        "invalid", None, None, "size mismatch for conv1 size mismatch for conv1",
    )  # fmt: skip
    assert _outcome(sessions, long_one)[3] == "x" * uploads.MAX_ERROR_CHARS


def test_a_pending_model_can_be_dropped_and_backdated(sessions: sessionmaker[Session]) -> None:
    long_ago = utcnow() - timedelta(days=2)
    with sessions.begin() as session:
        dropped, old = _model(session), _model(session, created_at=long_ago)
    with sessions.begin() as session:
        assert uploads.drop_pending_model(session, dropped)
        assert not uploads.drop_pending_model(session, dropped)
    with sessions() as session:
        assert session.get(Model, dropped) is None
        created = session.get_one(Model, old).created_at
    # SQLite gives naive datetimes back; we store UTC.
    assert (created if created.tzinfo else created.replace(tzinfo=UTC)) == long_ago


def test_a_dataset_is_recorded_as_inspected(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        dataset_id = uploads.add_dataset(
            session, name="pets", filename="pets.zip", format="zip", sha256="d" * 64, size=99,
            samples=40, classes=("cat", "dog"), input_shape=(3, 64, 64),
        ).id  # fmt: skip
    with sessions() as session:
        stored = session.get_one(Dataset, dataset_id)
    assert dataset_id.startswith("dst_")
    assert (stored.name, stored.format, stored.samples) == ("pets", "zip", 40)
    assert (stored.classes, stored.input_shape) == (["cat", "dog"], [3, 64, 64])
