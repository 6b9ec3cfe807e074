"""What every command prints and how it ends: JSON for scripts, messages, exit codes.

Commands print data either as tables (stdout) or, with ``--json``, as one JSON document on
stdout and nothing else: messages, progress and warnings then go to stderr. Times are ISO 8601
with their zone, counts are integers, missing values are null.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

console = Console()
# Errors are one line however long (no wrapping at the terminal's width) and never markup.
err = Console(stderr=True, soft_wrap=True)

# Exit codes, the same for every command (the README's table is this one).
EXIT_OK = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_CHECK_FAILED = 3
EXIT_BUSY = 4
EXIT_INTERNAL = 70
EXIT_CODES = {
    EXIT_OK: "done",
    EXIT_NOT_FOUND: "not found: no such ledger, subject, model version or run",
    EXIT_BAD_INPUT: "bad input or usage: the line on stderr says which value and what was expected",
    EXIT_CHECK_FAILED: "a gate or check failed (e.g. the redeploy check's invalidation rate)",
    EXIT_BUSY: "the same work is already running (the line names the holder); --wait waits",
    EXIT_INTERNAL: "internal error, a bug: GOVERNANCE_DEBUG=1 shows the traceback",
}


class CliError(Exception):
    """A failure the command reports as one line on stderr, ending with ``code``."""

    def __init__(self, message: str, code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """End the command with one line on stderr and exit ``code``."""
    raise CliError(message, code)


def exit_code(exc: BaseException) -> int:
    """The exit code of an error the core raised on purpose."""
    from governance.exceptions import NotFound, RunInProgress

    if isinstance(exc, CliError):
        return exc.code
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, RunInProgress):
        return EXIT_BUSY
    return EXIT_BAD_INPUT


def ui(as_json: bool) -> Console:
    """Where a command's messages and progress go: stderr when stdout carries JSON."""
    return err if as_json else console


def utc_iso(value: datetime) -> str:
    """ISO 8601 with the zone; a naive time is the ledger's UTC."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: aware ISO times, integers for whole numpy counts, null for
    NaN, records for a DataFrame."""
    import numpy as np
    import pandas as pd

    if obj is None or isinstance(obj, bool | str | int):
        return obj
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        items = sorted(obj, key=str) if isinstance(obj, set | frozenset) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, pd.DataFrame):
        return [jsonable(r) for r in obj.to_dict(orient="records")]
    if isinstance(obj, pd.Timestamp):
        return None if pd.isna(obj) else utc_iso(obj.to_pydatetime())
    if isinstance(obj, datetime):
        return utc_iso(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating | Decimal):
        return jsonable(float(obj))
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, Path):
        return str(obj)
    return str(obj)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as one JSON document on stdout (and nothing else goes there)."""
    sys.stdout.write(json.dumps(jsonable(obj), indent=2) + "\n")
    sys.stdout.flush()
