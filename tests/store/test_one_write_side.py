"""Each stored entity has one write side, the store (DESIGN.md, "Shared shapes"): routes, the
worker, the reconciler, the launch code, the benchmarks and the test seeders call
`infra/store/` functions and never write rows themselves.

The check reads the source (no imports, nothing runs) and flags, outside `infra/store/`:
- SQLAlchemy's `insert`, `update` or `delete` statements (imported or as `sa.update`);
- `session.add`, `.delete`, `.merge`, `.add_all` and the bulk writes on a session;
- constructing an ORM row (calling a class mapped in `infra.store.models`);
- raw SQL that writes (`INSERT INTO`, `UPDATE ... SET`, `DELETE FROM`).
Changing a loaded row's attributes and committing is not caught; review still has to.

Tests themselves may still push a timestamp into the past ("as if time had passed") or
break a row on purpose; the seeders that build their fixtures may not.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from infra.store.models import Base

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("service", "worker", "infra", "edgeprune", "bench")
STORE = ROOT / "infra" / "store"
SEEDERS = (
    "tests/store/rows.py",
    "tests/api/api_helpers.py",
    "tests/dashboard/seed.py",
    "tests/worker/tinyjob.py",
    "tests/faults/harness.py",
)
SQL_WRITE_FUNCTIONS = {"insert", "update", "delete"}
SESSION_WRITES = {"add", "add_all", "delete", "merge"}
ALWAYS_WRITES = {"add_all", "bulk_save_objects", "bulk_insert_mappings", "bulk_update_mappings"}
RAW_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b", re.IGNORECASE)
MAPPED = frozenset(mapper.class_.__name__ for mapper in Base.registry.mappers)


def _receiver_name(node: ast.expr) -> str:
    """`session` for `session.add`, `self.session` and `ctx.sessions()` alike."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def writes_outside_the_store(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) for every row write in `source`."""
    tree = ast.parse(source)
    sqlalchemy_aliases: set[str] = set()
    row_classes: dict[str, str] = {}  # local name -> mapped class
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "sqlalchemy":
                    sqlalchemy_aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if node.module.startswith("sqlalchemy") and alias.name in SQL_WRITE_FUNCTIONS:
                    yield node.lineno, f"imports sqlalchemy's {alias.name}"
                if node.module == "infra.store.models" and alias.name in MAPPED:
                    row_classes[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and RAW_WRITE.search(node.value)
        ):
            yield node.lineno, "raw SQL that writes"
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in row_classes:
            yield node.lineno, f"builds a {row_classes[func.id]} row"
        if not isinstance(func, ast.Attribute):
            continue
        receiver = func.value
        if (
            func.attr in SQL_WRITE_FUNCTIONS
            and isinstance(receiver, ast.Name)
            and receiver.id in sqlalchemy_aliases
        ):
            yield node.lineno, f"{receiver.id}.{func.attr}"
        elif func.attr in ALWAYS_WRITES or (
            func.attr in SESSION_WRITES and "session" in _receiver_name(receiver).lower()
        ):
            yield node.lineno, f"session.{func.attr}"


def _checked_files() -> list[Path]:
    files = [
        path
        for room in ROOMS
        for path in sorted((ROOT / room).rglob("*.py"))
        if STORE not in path.parents
    ]
    return files + [ROOT / seeder for seeder in SEEDERS]


def test_the_check_sees_every_kind_of_write() -> None:
    """The check itself must be able to fail: each line below is one write it has to see."""
    source = """
import sqlalchemy as sa
from sqlalchemy import delete, text
from infra.store.models import Job, Model as M

def writes(session, ctx, job_id):
    session.add(M(name="m"))
    ctx.sessions().add_all([Job()])
    self.session.merge(x)
    session.delete(x)
    session.execute(sa.update(Job).values(state="failed"))
    session.execute(text("update jobs set state = 'failed'"))
    session.execute(text("DELETE FROM jobs"))
"""
    found = sorted(writes_outside_the_store(source))
    assert found == [
        (3, "imports sqlalchemy's delete"),
        (7, "builds a Model row"),
        (7, "session.add"),
        (8, "builds a Job row"),
        (8, "session.add_all"),
        (9, "session.merge"),
        (10, "session.delete"),
        (11, "sa.update"),
        (12, "raw SQL that writes"),
        (13, "raw SQL that writes"),
    ]
    reads = """
from sqlalchemy import select
from infra.store import uploads
from infra.store.models import Model

def reads(session, seen, ids):
    seen.add(1)
    ids.update({2: 3})
    session.get(Model, "m")
    session.scalars(select(Model).where(Model.status == "pending"))
    uploads.add_model(session, name="m")
"""
    assert list(writes_outside_the_store(reads)) == []


def test_rows_are_written_only_by_the_store() -> None:
    files = _checked_files()
    assert len(files) > 100 and ROOT / "service" / "reconciler.py" in files  # it looked
    found = [
        f"{path.relative_to(ROOT)}:{line} {what}"
        for path in files
        for line, what in writes_outside_the_store(path.read_text(encoding="utf-8"))
    ]
    assert not found, "call a function of infra/store/ instead:\n" + "\n".join(found)
