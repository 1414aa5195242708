"""Alembic environment: the metadata of every banshi table, the URL from the settings.

``assistant.storage.migrate.migrate`` passes its own connection (``config.attributes["connection"]``);
the ``alembic`` command line falls back to the configured database URL.
"""

from __future__ import annotations

from alembic import context

import assistant.storage.tables  # noqa: F401  (registers the gateway tables on Base)
import knowledge.db  # noqa: F401  (registers the catalog and feedback tables on Base)
import assistant.storage.catalog_tables  # noqa: F401  (published catalog edits)
import assistant.storage.analytics_tables  # noqa: F401  (the analytics rollup)
import assistant.storage.review_tables  # noqa: F401  (the review queue)
import assistant.storage.call_tables  # noqa: F401  (tickets saved from calls)
import assistant.storage.training_tables  # noqa: F401  (retraining runs)
import assistant.storage.model_tables  # noqa: F401  (the model each replica took up after a retraining)
from assistant.storage.database import Base

target_metadata = Base.metadata


def run_with(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    from sqlalchemy import create_engine

    from assistant.config.settings import get_settings

    engine = create_engine(get_settings().db_url, future=True)
    with engine.connect() as conn:
        run_with(conn)
