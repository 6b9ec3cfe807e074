"""The schema as SQL text, rendered from the mapped tables (sql/schema.sql is this output)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateIndex, CreateTable

from governance.store.models import Base

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_DIALECTS = {"postgresql": postgresql.dialect(), "sqlite": sqlite.dialect()}


def render_schema(dialect: str = "postgresql") -> str:
    """CREATE TABLE and CREATE INDEX statements for every table, in dependency order."""
    d = _DIALECTS[dialect]
    parts = [
        "-- Generated from governance/store/models.py by governance.store.ddl.render_schema();",
        "-- do not edit by hand. Migrations in sql/migrations create the same schema.",
        "",
    ]
    for table in Base.metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=d)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            parts.append(str(CreateIndex(index).compile(dialect=d)).strip() + ";")
        parts.append("")
    return "\n".join(line.rstrip() for line in "\n".join(parts).splitlines()) + "\n"


def view_statements() -> list[str]:
    """The CREATE VIEW statements of sql/views.sql."""
    text = (SQL_DIR / "views.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def view_names(engine: sa.Engine) -> list[str]:
    return sorted(sa.inspect(engine).get_view_names())


if __name__ == "__main__":
    (SQL_DIR / "schema.sql").write_text(render_schema())
