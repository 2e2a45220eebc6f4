"""Promotion keeps every version; rollback re-points; concurrent promotions never clash."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from infra.store import deployments


def test_promote_keeps_history_and_is_idempotent(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    a, b = new_job(), new_job()
    with sessions.begin() as session:
        assert deployments.promote(session, "cam", a).version == 1
        assert deployments.promote(session, "cam", a).version == 1  # same job: no new version
        assert deployments.promote(session, "cam", b).version == 2
        assert deployments.promote(session, "cam", a).version == 3
    with sessions() as session:
        assert [(v.version, v.job_id) for v in deployments.history(session, "cam")] == [
            (3, a), (2, b), (1, a),
        ]  # fmt: skip
        current = deployments.current(session, "cam")
        assert current is not None and (current.version, current.job_id) == (3, a)


def test_rollback_to_previous_and_to_a_named_version(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    a, b, c = new_job(), new_job(), new_job()
    with sessions.begin() as session:
        for job in (a, b, c):
            deployments.promote(session, "door", job)
    with sessions.begin() as session:
        assert deployments.rollback(session, "door").version == 2
        assert deployments.rollback(session, "door").version == 1
        with pytest.raises(deployments.VersionNotFound):
            deployments.rollback(session, "door")
        assert deployments.rollback(session, "door", 3).job_id == c
        with pytest.raises(deployments.VersionNotFound):
            deployments.rollback(session, "door", 9)
        with pytest.raises(deployments.DeploymentNotFound):
            deployments.rollback(session, "nope")
    with sessions() as session:
        assert len(deployments.history(session, "door")) == 3  # rollback adds no version
        assert deployments.current(session, "missing") is None


def test_concurrent_promotions_get_distinct_versions(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    job_ids = [new_job() for _ in range(6)]
    barrier = threading.Barrier(len(job_ids))
    errors: list[BaseException] = []

    def promote(job_id: str) -> None:
        try:
            barrier.wait()
            with sessions.begin() as session:
                deployments.promote(session, "race", job_id)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=promote, args=(j,)) for j in job_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    with sessions() as session:
        history = deployments.history(session, "race")
    assert sorted(v.version for v in history) == [1, 2, 3, 4, 5, 6]
    assert sorted(v.job_id for v in history) == sorted(job_ids)
