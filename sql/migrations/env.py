"""Alembic environment: migrations run on the engine the caller passes (see init_store), or
on the URL given by hand (``alembic -c sql/alembic.ini -x url=... upgrade head``)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from governance.config import db_url
from governance.store.models import Base

config = context.config
target_metadata = Base.metadata


def target_url() -> str:
    """``-x url=...``, else ``sqlalchemy.url`` in the ini file, else the default store."""
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.get_main_option("sqlalchemy.url")
        or db_url()
    )


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or create_engine(target_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=target_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
