"""Atomic file writes (a reader sees the old file or the new one, never half of either), and
reading a Parquet file a user named, refused in one line when it is not one."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from governance.exceptions import InputFileError


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` through a temporary file in its folder."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` as UTF-8 to ``path``, atomically."""
    atomic_write_bytes(path, text.encode())


def atomic_write_parquet(table: pa.Table | pd.DataFrame, path: Path) -> None:
    """Write a table or frame (without its index) as Parquet to ``path``, atomically."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        if isinstance(table, pd.DataFrame):
            table.reset_index(drop=True).to_parquet(tmp, index=False)
        else:
            pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_parquet(path: str | Path, what: str = "input") -> pd.DataFrame:
    """Read a Parquet file a user named.

    Raises
    ------
    InputFileError
        If ``path`` is missing, a folder, or not readable as Parquet (a CSV, say); one line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{what} {path} does not exist or is not a file")
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputFileError(f"{what} {path} is not a readable Parquet file ({first})") from exc
