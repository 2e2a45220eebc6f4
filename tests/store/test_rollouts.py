"""Staged rollouts: a promotion to a percentage of the devices, widen, rollback."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from infra.store import deployments
from infra.store.models import Deployment


def _name() -> str:
    return f"stage-{uuid.uuid4().hex[:8]}"  # the PostgreSQL database is shared by the session


def _state(session: Session, name: str) -> tuple[int | None, int | None, int | None]:
    dep = session.get(Deployment, name, populate_existing=True)
    assert dep is not None
    return dep.current_version, dep.rollout_version, dep.rollout_percent


def test_buckets_are_stable_and_spread() -> None:
    ids = [f"dev_{i:016x}" for i in range(2000)]
    buckets = [deployments.rollout_bucket(d) for d in ids]
    assert buckets == [deployments.rollout_bucket(d) for d in ids]
    assert min(buckets) == 0 and max(buckets) == 99
    share = sum(b < 10 for b in buckets) / len(buckets)
    assert 0.07 < share < 0.13  # about 10% of the devices fall in a 10% stage


def test_assigned_version_follows_the_stage() -> None:
    ids = [f"dev_{i:016x}" for i in range(500)]
    dep = Deployment(name="x", current_version=1, rollout_version=2, rollout_percent=10)
    staged = {d for d in ids if deployments.assigned_version(dep, d) == 2}
    assert staged == {d for d in ids if deployments.rollout_bucket(d) < 10}
    assert deployments.assigned_version(dep, None) == 1  # admins see the stable version
    dep.rollout_percent = 50
    widened = {d for d in ids if deployments.assigned_version(dep, d) == 2}
    assert staged < widened  # widening keeps every device already in the stage


def test_stage_widen_and_finish(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    name, a, b = _name(), new_job(), new_job()
    with sessions.begin() as session:
        deployments.promote(session, name, a)
        staged = deployments.promote(session, name, b, percent=10)
        assert staged.version == 2
        assert _state(session, name) == (1, 2, 10)
        # the staged job again: only the percentage changes, no new version
        assert deployments.promote(session, name, b, percent=20).version == 2
        assert _state(session, name) == (1, 2, 20)
        with pytest.raises(deployments.PercentBelowStage):
            deployments.widen(session, name, 15)
        assert deployments.widen(session, name, 50).version == 2
        assert _state(session, name) == (1, 2, 50)
        deployments.widen(session, name)
        assert _state(session, name) == (2, None, None)
        with pytest.raises(deployments.NoRolloutInProgress):
            deployments.widen(session, name)
        assert len(deployments.history(session, name)) == 2


def test_rollback_during_a_stage_returns_everyone_to_the_stable_version(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    name, a, b, c = _name(), new_job(), new_job(), new_job()
    with sessions.begin() as session:
        deployments.promote(session, name, a)
        deployments.promote(session, name, b)
        deployments.promote(session, name, c, percent=10)
        assert deployments.rollback(session, name).version == 2  # the stage ends
        assert _state(session, name) == (2, None, None)
        assert deployments.rollback(session, name).version == 1  # then the usual rollback
        deployments.promote(session, name, c, percent=30)  # v3's job staged again: new version
        assert _state(session, name) == (1, 4, 30)
        deployments.rollback(session, name, 2)  # a named version also ends the stage
        assert _state(session, name) == (2, None, None)


def test_a_full_promotion_replaces_a_stage(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    name, a, b, c = _name(), new_job(), new_job(), new_job()
    with sessions.begin() as session:
        deployments.promote(session, name, a)
        deployments.promote(session, name, b, percent=10)
        deployments.promote(session, name, c)
        assert _state(session, name) == (3, None, None)
        deployments.promote(session, name, b, percent=10)  # a new stage of an older job
        assert _state(session, name) == (3, 4, 10)
        deployments.promote(session, name, c)  # the stable job to everyone: stage ends
        assert _state(session, name) == (3, None, None)


def test_first_promotion_cannot_be_staged(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    name = _name()
    with sessions.begin() as session, pytest.raises(deployments.NoStableVersion):
        deployments.promote(session, name, new_job(), percent=10)


def test_a_finished_jobs_promotion_is_staged_unless_it_is_the_first(
    sessions: sessionmaker[Session], new_job: Callable[..., str]
) -> None:
    name, a, b = _name(), new_job(), new_job()
    with sessions.begin() as session:
        assert deployments.promote_finished_job(session, name, a, 10).version == 1
        assert _state(session, name) == (1, None, None)
        assert deployments.promote_finished_job(session, name, b, 10).version == 2
        assert _state(session, name) == (1, 2, 10)
