"""Alembic environment for the job ledger.

Run through ``service.db.upgrade`` / ``python -m service.db upgrade`` (no alembic.ini needed): it passes an open
connection in ``config.attributes["connection"]`` inside a transaction that holds the migration lock.
Standalone (``alembic -c service/migrations/alembic.ini ...``) the URL comes from ``sqlalchemy.url`` or
``DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context

import service.actions.triggers.store  # noqa: F401 - puts the trigger tables on Base.metadata
import service.actions.webhooks.model  # noqa: F401 - and the webhook relay's
from service.actions.ledger.model import Base
from service.actions.storage import create_engine, database_url_from_env

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    return config.get_main_option("sqlalchemy.url") or database_url_from_env()


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), pool_size=1)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
