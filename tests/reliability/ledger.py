"""Helpers of the reliability tests: a checksum over every ledger table and small SQL probes.

The checksum ignores what legitimately differs between two runs of the same night (surrogate
ids, run ids, timestamps of the run itself, seconds, attempt counters; a quality-settings id is
compared by its settings' hash) and nothing else, so two ledgers with equal checksums hold the
same decisions, explanations, quarantine and chunks.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa

from governance.store.models import Base

# Columns that legitimately differ between two runs of the same night.
VOLATILE = {
    "id",
    "run_id",
    "explainer_id",
    "provenance_id",
    "action_set_id",
    "cost_model_id",
    "started_at",
    "finished_at",
    "quarantined_at",
    "issued_at",
    "checked_at",
    "seconds",
    "timings",
    "flow_run_id",
    "attempts",
    "code_version",
}
# Keys of runs.counts that describe the attempt, not the night.
VOLATILE_COUNTS = {"chunks_skipped"}
VERSION_COLUMNS = {"model_version_id", "old_model_version_id"}
# Surrogate keys of content-addressed rows: compared by the content hash they point to, since
# chunks written concurrently (or a rerun's) can number the same settings differently.
SETTINGS_COLUMNS = {"settings_id"}


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        # SQLite hands back naive UTC, PostgreSQL aware stamps; compare both as naive UTC.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def ledger_rows(url: str) -> dict[str, list[str]]:
    """Every ledger table as a sorted list of canonical row strings (volatile columns left out,
    model version ids replaced by ``name/version``)."""
    engine = sa.create_engine(url)
    out: dict[str, list[str]] = {}
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            versions = {}
            if "model_versions" in names:
                found = conn.execute(sa.text("SELECT id, name, version FROM model_versions"))
                versions = {i: f"{n}/{v}" for i, n, v in found}
            settings = {}
            if "quality_settings" in names:
                found = conn.execute(sa.text("SELECT id, sha256 FROM quality_settings"))
                settings = dict(found.all())
            for table in Base.metadata.sorted_tables:
                if table.name not in names:
                    continue
                cols = [c for c in table.columns if c.name not in VOLATILE]
                rows = []
                for record in conn.execute(sa.select(*cols)).mappings():
                    row = dict(record)
                    for col in VERSION_COLUMNS & row.keys():
                        row[col] = versions.get(row[col], row[col])
                    for col in SETTINGS_COLUMNS & row.keys():
                        row[col] = settings.get(row[col], row[col])
                    if table.name == "runs":
                        row["counts"] = {
                            k: v
                            for k, v in (row["counts"] or {}).items()
                            if k not in VOLATILE_COUNTS
                        }
                        # where the ledger itself lives differs between two test ledgers
                        row["parameters"] = {
                            k: v for k, v in (row["parameters"] or {}).items() if k != "db"
                        }
                    rows.append(json.dumps({k: _norm(v) for k, v in row.items()}, sort_keys=True))
                out[table.name] = sorted(rows)
    finally:
        engine.dispose()
    return out


def digest(rows: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """Row count and sha256 per table."""
    return {
        name: (len(r), hashlib.sha256("\n".join(r).encode()).hexdigest()[:16])
        for name, r in rows.items()
    }


def assert_same_ledger(actual: dict[str, list[str]], expected: dict[str, list[str]]) -> None:
    """Fail with the tables and a few rows that differ, when two ledgers differ at all."""
    if digest(actual) == digest(expected):
        return
    lines = []
    for name in sorted(set(actual) | set(expected)):
        a, e = set(actual.get(name, [])), set(expected.get(name, []))
        if a == e and len(actual.get(name, [])) == len(expected.get(name, [])):
            continue
        lines.append(
            f"{name}: {len(actual.get(name, []))} rows vs {len(expected.get(name, []))} expected; "
            f"{len(a - e)} unexpected, {len(e - a)} missing"
        )
        extra, missing = sorted(a - e), sorted(e - a)
        if len(extra) == len(missing) == 1:  # one row changed: name the fields
            x, m = json.loads(extra[0]), json.loads(missing[0])
            lines += [f"  {k}: {x.get(k)!r} != {m.get(k)!r}" for k in sorted(x) if x[k] != m.get(k)]
        else:
            lines += [f"  + {r[:300]}" for r in extra[:3]]
            lines += [f"  - {r[:300]}" for r in missing[:3]]
    raise AssertionError("ledgers differ:\n" + "\n".join(lines))


def scalar(url: str, sql: str, **params: Any) -> Any:
    """One value from the ledger, through bound parameters."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()
    finally:
        engine.dispose()


def column(url: str, sql: str, **params: Any) -> list[Any]:
    """One column from the ledger, through bound parameters."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).scalars())
    finally:
        engine.dispose()


def text_values(url: str) -> list[str]:
    """Every text and JSON value stored in any ledger table, as text (for leak scans)."""
    engine = sa.create_engine(url)
    found: list[str] = []
    try:
        with engine.connect() as conn:
            names = set(sa.inspect(conn).get_table_names())
            for table in Base.metadata.sorted_tables:
                if table.name not in names:
                    continue
                for record in conn.execute(sa.select(table)).mappings():
                    found.extend(
                        json.dumps(v, default=str) if isinstance(v, dict | list) else v
                        for v in record.values()
                        if isinstance(v, str | dict | list)
                    )
    finally:
        engine.dispose()
    return found
