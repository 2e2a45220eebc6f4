"""Migrations build the schema on empty databases and match the ORM models exactly."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from infra.store.db import make_engine
from infra.store.migrate import upgrade_database
from infra.store.models import Base
from tests.conftest import create_pg_database, drop_pg_database

EXPECTED_TABLES = {
    "tokens", "models", "datasets", "jobs", "job_events", "job_artifacts", "deployments",
    "deployment_versions", "devices", "device_reports", "alembic_version",
}  # fmt: skip


def _check_schema(url: str) -> None:
    engine = make_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) >= EXPECTED_TABLES
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
    finally:
        engine.dispose()


def test_upgrade_on_empty_sqlite_twice(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}"
    upgrade_database(url)
    upgrade_database(url)  # a restart: nothing to do
    _check_schema(url)


def test_upgrade_on_empty_postgres_from_several_processes_at_once() -> None:
    url = create_pg_database("edgeprune_migrate")
    try:
        errors: list[BaseException] = []

        def upgrade() -> None:
            try:
                upgrade_database(url.replace("postgresql+psycopg://", "postgresql://"))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=upgrade) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        _check_schema(url)
    finally:
        drop_pg_database(url)


def test_0003_keeps_one_live_device_per_name(tmp_path: Path) -> None:
    """Databases from before the one-live-device-per-name rule may hold duplicates: the
    upgrade keeps the newest and revokes the others with their tokens."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0002")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for device_id, created in (("dev_old", "2026-01-01"), ("dev_new", "2026-02-01")):
                conn.execute(
                    text(
                        "INSERT INTO devices (id, name, deployment, created_at) "
                        "VALUES (:id, 'cam', 'cams', :at)"
                    ),
                    {"id": device_id, "at": created},
                )
                conn.execute(
                    text(
                        "INSERT INTO tokens (id, name, kind, token_hash, device_id, created_at) "
                        "VALUES (:tok, 'device cam', 'device', :hash, :id, :at)"
                    ),
                    {"tok": f"tok_{device_id}", "hash": device_id * 4, "id": device_id,
                     "at": created},
                )  # fmt: skip
        upgrade_database(url)
        with engine.connect() as conn:
            devices = dict(conn.execute(text("SELECT id, revoked_at FROM devices")).all())
            tokens = dict(conn.execute(text("SELECT device_id, revoked_at FROM tokens")).all())
    finally:
        engine.dispose()
    assert devices["dev_new"] is None and devices["dev_old"] is not None
    assert tokens["dev_new"] is None and tokens["dev_old"] is not None
    _check_schema(url)


def test_0005_keeps_models_and_lets_an_upload_leave_its_fields_to_the_inspection(
    tmp_path: Path,
) -> None:
    """SQLite cannot alter a column's nullability: the batch copy must keep every row."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade_database(url, "0004")
    insert = text(
        "INSERT INTO models (id, name, arch, num_classes, input_shape, filename, format, sha256, "
        "size, status, created_at) VALUES (:id, 'm', :arch, :classes, :shape, 'm.pt', 'pt', "
        "'ab', 1, 'pending', '2026-01-01')"
    )
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"id": "mdl_old", "arch": "vgg11", "classes": 10,
                                  "shape": "[1, 32, 32]"})  # fmt: skip
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": "mdl_new", "arch": None, "classes": None, "shape": None})
        upgrade_database(url)
        with engine.begin() as conn:
            conn.execute(insert, {"id": "mdl_new", "arch": None, "classes": None, "shape": None})
            rows = dict(conn.execute(text("SELECT id, arch FROM models")).all())
    finally:
        engine.dispose()
    assert rows == {"mdl_old": "vgg11", "mdl_new": None}
    _check_schema(url)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_0005_up_and_down_on_sqlite_and_postgres(tmp_path: Path, database: str) -> None:
    """Down again, uploads that never got their fields are dropped (they cannot be NOT NULL)
    and the others kept; up again, the schema is the models' once more."""
    from alembic import command

    from infra.store.migrate import alembic_config

    url = (
        create_pg_database("edgeprune_migrate_0005")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
    insert = text(
        "INSERT INTO models (id, name, arch, num_classes, input_shape, filename, format, sha256, "
        "size, status, created_at) VALUES (:id, 'm', :arch, :classes, :shape, 'm.pt', 'pt', "
        "'ab', 1, 'pending', '2026-01-01')"
    )
    engine = make_engine(url)
    try:
        upgrade_database(url)
        with engine.begin() as conn:
            conn.execute(insert, {"id": "mdl_full", "arch": "vgg11", "classes": 10,
                                  "shape": "[1, 32, 32]"})  # fmt: skip
            conn.execute(insert, {"id": "mdl_left", "arch": None, "classes": None, "shape": None})
        with engine.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
            conn.commit()
        with engine.connect() as conn:
            assert [r[0] for r in conn.execute(text("SELECT id FROM models"))] == ["mdl_full"]
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"id": "mdl_left", "arch": None, "classes": None, "shape": None})
        upgrade_database(url)
        _check_schema(url)
    finally:
        engine.dispose()
        if database == "postgresql":
            drop_pg_database(url)


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)]
)
def test_0006_adds_limits_to_models_already_there_and_goes_down_again(
    tmp_path: Path, database: str
) -> None:
    from alembic import command

    from infra.store.migrate import alembic_config

    url = (
        create_pg_database("edgeprune_migrate_0006")
        if database == "postgresql"
        else f"sqlite:///{tmp_path / 'm.db'}"
    )
    engine = make_engine(url)
    try:
        upgrade_database(url, "0005")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO models (id, name, filename, format, sha256, size, status, "
                    "created_at) VALUES ('mdl_old', 'm', 'm.pt', 'pt', 'ab', 1, 'ready', "
                    "'2026-01-01')"
                )
            )
        upgrade_database(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, limits FROM models")).all()
        assert [tuple(r) for r in rows] == [("mdl_old", None)]  # kept, nothing recorded yet
        _check_schema(url)
        with engine.connect() as conn:
            cfg = alembic_config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
            conn.commit()
        columns = {c["name"] for c in inspect(engine).get_columns("models")}
        assert "limits" not in columns and "arch" in columns
    finally:
        engine.dispose()
        if database == "postgresql":
            drop_pg_database(url)
