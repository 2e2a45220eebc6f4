"""Alembic environment: runs migrations on the connection handed in by `upgrade_database`.

From a shell (`alembic -c infra/store/alembic.ini -x url=... upgrade head`) it opens its own
connection to the `url` given with -x.
"""

from __future__ import annotations

from alembic import context

from infra.store.db import make_engine
from infra.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database URL: alembic -x url=sqlite:///path.db ...")
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
