"""Compare two ledgers table by table, except columns that legitimately differ between runs.

Two ledgers built from the same inputs and settings must hold the same rows. What may differ
is named, never guessed: wall-clock times, timings, the code version (and the library
versions and hash of a result provenance, which fold it in), Prefect run ids, the data
folder's path in run parameters, and surrogate integer ids. Surrogate ids are not dropped: a
column that refers to ``runs``, ``model_versions``, ``explainers``, ``action_sets``,
``cost_models`` or ``result_provenance`` is replaced by the referenced row's natural key (run
key, model name and version, content hashes, the settings' hash), so two ledgers that number
their rows differently still compare equal, and a row pointing at another run or version does
not.

Rows are compared as multisets, bit for bit: floats by their exact value, JSON by its
canonical text (sorted keys), times in UTC.

Usage::

    python bench/ledger_diff.py LEFT RIGHT [--ignore COLUMN ...] [--only TABLE ...] [--json]

LEFT and RIGHT are SQLAlchemy URLs or paths to SQLite files. ``--ignore`` adds to the default
list; a name is ``column`` (in every table), ``table.column``, or ``table.column.key`` for a
key of a JSON column (nested keys with more dots). Exit status: 0 when every table matches,
1 when any differs, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

DEFAULT_IGNORE = (
    # wall-clock times of the run itself (decided_at comes from the log and is compared)
    "started_at",
    "finished_at",
    "quarantined_at",
    "checked_at",
    "computed_at",
    "created_at",
    "deployed_at",
    "issued_at",
    "received_at",
    "due_at",
    "completed_at",
    "purged_at",
    "deployment_events.at",
    # timings and provenance of the code that ran
    "timings",
    "seconds",
    "code_version",
    "flow_run_id",
    "attempts",
    # where the data folder was, and wall-clock keys inside JSON columns
    "runs.parameters.db",
    "runs.parameters.log",
    "model_versions.manifest.created_at",
    "model_versions.manifest.deployed_at",
    "alembic_version.version_num",
    # a provenance's own hash and library versions fold in the code that ran
    "result_provenance.sha256",
    "result_provenance.libraries",
)
# table -> columns of its natural key; references to these tables compare by that key
NATURAL_KEYS = {
    "runs": ("run_key",),
    "model_versions": ("name", "version"),
    "explainers": ("config_sha256",),
    "action_sets": ("name", "version", "sha256"),
    "cost_models": ("sha256",),
    "result_provenance": ("settings_sha256",),  # the code version is compared nowhere
}


def engine_for(target: str) -> sa.Engine:
    """An engine for a SQLAlchemy URL or a SQLite file path (which must exist)."""
    if "://" not in target:
        path = Path(target)
        if not path.is_file():
            raise SystemExit(f"ledger_diff: no such SQLite file: {path}")
        target = f"sqlite:///{path.resolve()}"
    return sa.create_engine(target)


def _plain(value: Any) -> Any:
    """A value in a form that compares equal across drivers and backends."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value.hex()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _surrogate(column: sa.Column) -> bool:
    """A table's own integer id (its whole primary key): numbering, not content."""
    pk = column.table.primary_key.columns
    return column.primary_key and len(pk) == 1 and isinstance(column.type, sa.Integer)


def _drop_keys(obj: Any, paths: Iterable[tuple[str, ...]]) -> Any:
    for path in paths:
        node = obj
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return obj


class Ledger:
    """One ledger's tables, read whole, with references replaced by natural keys."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.meta = sa.MetaData()
        self.meta.reflect(engine)
        self._keys: dict[str, dict[Any, tuple]] = {}

    def tables(self) -> list[str]:
        return sorted(self.meta.tables)

    def _natural(self, table: str) -> dict[Any, tuple]:
        if table not in self._keys:
            t = self.meta.tables.get(table)
            keys: dict[Any, tuple] = {}
            if t is not None and "id" in t.c:
                cols = [t.c.id, *(t.c[c] for c in NATURAL_KEYS[table] if c in t.c)]
                with self.engine.connect() as conn:
                    for row in conn.execute(sa.select(*cols)):
                        keys[row[0]] = tuple(_plain(v) for v in row[1:])
            self._keys[table] = keys
        return self._keys[table]

    def rows(self, table: str, ignore: set[str]) -> tuple[list[str], Counter]:
        """Compared columns and the multiset of rows (as canonical JSON text)."""
        t = self.meta.tables[table]
        refs = {
            fk.parent.name: fk.column.table.name
            for fk in t.foreign_keys
            if fk.column.table.name in NATURAL_KEYS
        }
        cols = [
            c.name
            for c in t.columns
            if c.name not in ignore and f"{table}.{c.name}" not in ignore and not _surrogate(c)
        ]
        json_cols = {c.name for c in t.columns if isinstance(c.type, sa.JSON)}
        key_paths: dict[str, list[tuple[str, ...]]] = {}
        for name in ignore:
            parts = name.split(".")
            if len(parts) >= 3 and parts[0] == table:
                key_paths.setdefault(parts[1], []).append(tuple(parts[2:]))
        out: Counter = Counter()
        with self.engine.connect() as conn:
            if not cols:  # every column ignored: compare how many rows there are
                n = conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                return cols, Counter({"{}": n} if n else {})
            for row in conn.execute(sa.select(*(t.c[c] for c in cols))):
                rec = {}
                for name, value in zip(cols, row, strict=True):
                    if name in refs and value is not None:
                        value = self._natural(refs[name]).get(value, ("?", value))
                    elif name in json_cols and isinstance(value, str):
                        value = json.loads(value)
                    value = _plain(value)
                    if name in key_paths:
                        value = _drop_keys(value, key_paths[name])
                    rec[name] = value
                out[json.dumps(rec, sort_keys=True, default=str)] += 1
        return cols, out


def diff_ledgers(
    left: str | sa.Engine,
    right: str | sa.Engine,
    ignore: Sequence[str] = (),
    only: Sequence[str] | None = None,
    examples: int = 3,
) -> dict[str, dict[str, Any]]:
    """Per table: row counts on each side, rows only on the left / right, and a few examples.

    A table present on one side only is reported with ``missing`` set. Tables that match have
    ``only_left == only_right == 0``.
    """
    a = Ledger(left if isinstance(left, sa.Engine) else engine_for(left))
    b = Ledger(right if isinstance(right, sa.Engine) else engine_for(right))
    skip = set(DEFAULT_IGNORE) | set(ignore)
    report: dict[str, dict[str, Any]] = {}
    for table in sorted(set(a.tables()) | set(b.tables())):
        if only and table not in only:
            continue
        if table not in a.meta.tables or table not in b.meta.tables:
            report[table] = {"missing": "left" if table not in a.meta.tables else "right"}
            continue
        cols_a, rows_a = a.rows(table, skip)
        cols_b, rows_b = b.rows(table, skip)
        left_only, right_only = rows_a - rows_b, rows_b - rows_a
        report[table] = {
            "left": sum(rows_a.values()),
            "right": sum(rows_b.values()),
            "only_left": sum(left_only.values()),
            "only_right": sum(right_only.values()),
            "columns": cols_a if cols_a == cols_b else {"left": cols_a, "right": cols_b},
            "examples_left": [json.loads(r) for r in list(left_only)[:examples]],
            "examples_right": [json.loads(r) for r in list(right_only)[:examples]],
        }
    return report


def differs(report: dict[str, dict[str, Any]]) -> bool:
    """True when any table is missing on one side or holds rows the other does not."""
    return any(
        r.get("missing") or r["only_left"] or r["only_right"] or isinstance(r["columns"], dict)
        for r in report.values()
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("left")
    ap.add_argument("right")
    ap.add_argument("--ignore", nargs="*", default=[], help="more columns that may differ")
    ap.add_argument("--only", nargs="*", default=None, help="compare these tables only")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    try:
        report = diff_ledgers(args.left, args.right, args.ignore, args.only)
    except sa.exc.SQLAlchemyError as exc:
        print(f"ledger_diff: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=1, default=str))
    else:
        width = max((len(t) for t in report), default=5)
        for table, r in report.items():
            if r.get("missing"):
                print(f"{table:<{width}}  missing on the {r['missing']}")
                continue
            same = not (r["only_left"] or r["only_right"]) and not isinstance(r["columns"], dict)
            status = "same" if same else f"DIFFERS ({r['only_left']} / {r['only_right']} rows)"
            print(f"{table:<{width}}  {r['left']:>9,} {r['right']:>9,}  {status}")
            for side in ("left", "right"):
                for ex in r[f"examples_{side}"]:
                    print(f"    only {side}: {json.dumps(ex, default=str)[:300]}")
        print("ledgers match" if not differs(report) else "ledgers differ")
    return 1 if differs(report) else 0


if __name__ == "__main__":
    sys.exit(main())
