"""The purge check: search every file we own for an erased subject's id and values.

:func:`subject_needles` lists what to look for (the ids, and each feature value only these
subjects hold); :func:`scan_for_subject` searches raw bytes (text and binary doubles, across
block boundaries) and the decoded cells of SQLite and Parquet files. Numbers match only as
whole numbers (:func:`contains_needle`): 0.0675 is not found in someone's 0.06751.
"""

from __future__ import annotations

import os
import re
import sqlite3
import struct
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from governance.deletion.requests import check_ids
from governance.deletion.retrain import subject_mask
from governance.exceptions import (
    DeletionError,
)
from governance.intake.decision_log import SUBJECT

_SQLITE_MAGIC = b"SQLite format 3\x00"


_SCAN_BLOCK = 1 << 22


_NUMBER_TEXT = re.compile(r"[0-9.eE+-]+")


# -- proving the purge -----------------------------------------------------------------------
def subject_needles(
    frame: pd.DataFrame,
    subject_ids: Sequence[str],
    *,
    id_column: str = SUBJECT,
    columns: Sequence[str] | None = None,
    min_chars: int = 5,
) -> list[str | float]:
    """What a purge check should look for: the ids and each value only these subjects hold.

    A value shared with anyone else (an income of exactly 50,000, in any column) would be found
    after a correct purge, so only values that appear in the subjects' rows and nowhere in the
    other rows of ``frame`` are returned: numbers as floats, everything else as text. Values
    whose text is shorter than ``min_chars`` (an age of ``37.0``) are left out too: a short
    string turns up by chance in any binary file.

    Parameters
    ----------
    frame : DataFrame
        Data holding the subjects and others (training data, a decision log).
    subject_ids : sequence of str
    id_column : str, default="subject_id"
    columns : sequence of str, optional
        Columns to take values from; default every other column.
    min_chars : int, default=5
        Values are kept only if their shortest text form has this many characters (a number's
        forms are its ``repr`` and, when integral, the integer: ``88.0`` and ``88``).

    Returns
    -------
    list of str or float
        The ids first, then the distinctive values.
    """
    ids = check_ids(subject_ids)
    mine = subject_mask(frame, id_column, ids, "the frame")
    needles: list[str | float] = list(ids)
    chosen = list(columns or [c for c in frame.columns if c != id_column])
    # A value anyone else holds in ANY column would be found after a correct purge too (a
    # savings balance equal to someone's checking balance), so compare against all of them.
    others_num: set[float] = set()
    others_text: set[str] = set()
    for c in chosen:
        col = frame[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            others_num.update(col.to_numpy(dtype=float, na_value=np.nan)[~mine].tolist())
        else:
            others_text.update(col.astype(str).to_numpy()[~mine].tolist())
    for c in chosen:
        col = frame[c]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        values = col.to_numpy(dtype=float, na_value=np.nan) if numeric else col.astype(str)
        values = np.asarray(values)
        others = others_num if numeric else others_text
        for v in dict.fromkeys(values[mine].tolist()):
            if v in others or (numeric and not np.isfinite(v)):
                continue
            needle = float(v) if numeric else str(v)
            if min(len(f) for f in _text_forms(needle)) >= min_chars:
                needles.append(needle)
    return needles


def _text_forms(needle: str | float) -> list[str]:
    if isinstance(needle, str):
        return [needle]
    v = float(needle)
    forms = [repr(v)]
    if v.is_integer():
        forms.append(str(int(v)))
    return forms


def _number_regex(form: str) -> str:
    # A number's text counts only as a whole number: 0.0675 is not inside 10.0675, -0.0675,
    # 0.06751 or 0.0675e-3 (other people's values, which a plain substring search would find).
    return rf"(?<![0-9.\-]){re.escape(form)}(?![0-9]|[eE][-+]?[0-9]|\.[0-9])"


def _byte_patterns(needle: str | float) -> list[bytes | re.Pattern[bytes]]:
    """Exact byte strings (text needles, binary doubles) and, for numbers, bounded regexes."""
    if isinstance(needle, str):
        return [needle.encode("utf-8")]
    out: list[bytes | re.Pattern[bytes]] = [
        re.compile(_number_regex(f).encode("ascii")) for f in _text_forms(needle)
    ]
    # Binary doubles: little-endian (NumPy, Parquet PLAIN) and big-endian (SQLite records).
    return out + [struct.pack("<d", float(needle)), struct.pack(">d", float(needle))]


def contains_needle(text: str, needle: str | float) -> bool:
    """Whether ``text`` holds the needle: a text needle anywhere, a number as a whole number.

    Parameters
    ----------
    text : str
    needle : str or float

    Returns
    -------
    bool
    """
    if isinstance(needle, str):
        return needle in text
    return any(re.search(_number_regex(f), text) for f in _text_forms(needle))


def _search_stream(
    chunks: Iterator[bytes], patterns: dict[bytes | re.Pattern[bytes], int]
) -> set[int]:
    found: set[int] = set()
    # Keep enough of each block's end that a match cut by the block boundary, and the bytes
    # that bound a number on either side, are seen whole in the next buffer.
    keep = max((len(p.pattern if isinstance(p, re.Pattern) else p) for p in patterns), default=1)
    keep += 8
    tail = b""
    chunks = iter(chunks)
    chunk = next(chunks, None)
    while chunk is not None:
        following = next(chunks, None)
        buf = tail + chunk
        for p, i in patterns.items():
            if i in found:
                continue
            if isinstance(p, bytes):
                if p in buf:
                    found.add(i)
            else:
                # A match touching the buffer's end may continue in the next block (0.0675|1):
                # leave it to the next buffer, which holds it whole.
                limit = len(buf) if following is None else len(buf) - 1
                if any(m.end() <= limit for m in p.finditer(buf)):
                    found.add(i)
        tail = buf[-keep:]
        chunk = following
    return found


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while block := fh.read(_SCAN_BLOCK):
            yield block


def _cell_hits(values: list[Any], needles: Sequence[str | float], todo: set[int]) -> set[int]:
    """Needles (by index) found among decoded cell values."""
    found: set[int] = set()
    num_set = {
        float(v)
        for v in values
        if isinstance(v, int | float | np.number) and not isinstance(v, bool)
    }
    texts: list[str] | None = None
    for i in todo:
        n = needles[i]
        if not isinstance(n, str) and float(n) in num_set:
            found.add(i)
            continue
        if texts is None:
            texts = [str(v) for v in values if v is not None]
        if any(contains_needle(t, n) for t in texts):
            found.add(i)
    return found


def _parquet_hits(path: Path, needles: Sequence[str | float], todo: set[int]) -> set[int]:
    """Needles found among the decoded cells of a Parquet file, column by column."""
    found: set[int] = set()
    table = pq.read_table(path)
    for name in table.column_names:
        left = todo - found
        if not left:
            break
        col = table[name]
        kind = col.type
        if pa.types.is_dictionary(kind):
            col, kind = pc.cast(col, kind.value_type), kind.value_type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            values = pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
            texts: list[str] | None = None
            for i in left:
                n = needles[i]
                if not isinstance(n, str):
                    if np.any(values == float(n)):
                        found.add(i)
                elif _NUMBER_TEXT.fullmatch(n):  # other text never occurs in a number
                    texts = texts or [str(v) for v in col.to_pylist() if v is not None]
                    if any(n in t for t in texts):
                        found.add(i)
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            for i in left:
                n = needles[i]
                for f in _text_forms(n):
                    # Arrow's substring search first; a number's hits then checked whole.
                    hit = pc.match_substring(col, f)
                    if not pc.any(hit).as_py():
                        continue
                    cells = pc.filter(col, hit).to_pylist()
                    if any(contains_needle(t, n) for t in cells):
                        found.add(i)
                        break
        else:  # timestamps, booleans, nested values: compare their text
            found |= _cell_hits(
                [None if v is None else str(v) for v in col.to_pylist()], needles, left
            )
    return found


def _sqlite_hits(path: Path, needles: Sequence[str | float], todo: set[int]) -> set[int]:
    found: set[int] = set()
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for t in tables:
            quoted = '"' + t.replace('"', '""') + '"'
            for row in conn.execute(f"SELECT * FROM {quoted}"):  # noqa: S608 (names from the db)
                found |= _cell_hits(list(row), needles, todo - found)
                if not todo - found:
                    return found
    finally:
        conn.close()
    return found


def _scan_file(path: Path, needles: Sequence[str | float]) -> set[int]:
    patterns: dict[bytes | re.Pattern[bytes], int] = {}
    for i, n in enumerate(needles):
        for p in _byte_patterns(n):
            patterns.setdefault(p, i)
    found = _search_stream(_file_chunks(path), patterns)
    with open(path, "rb") as fh:
        head = fh.read(16)
    todo = set(range(len(needles))) - found
    if not todo:
        return found
    try:
        if head[:4] == b"PAR1":
            found |= _parquet_hits(path, needles, todo)
        elif head == _SQLITE_MAGIC:
            found |= _sqlite_hits(path, needles, todo)
        elif zipfile.is_zipfile(path):  # skops artifacts, zipped exports
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    with zf.open(info) as member:
                        found |= _search_stream(
                            iter(lambda m=member: m.read(_SCAN_BLOCK), b""), patterns
                        )
    except (pa.ArrowException, sqlite3.Error, zipfile.BadZipFile, OSError):
        pass  # undecodable: the byte scan above is all we can do, and it ran
    return found


def _files(paths: Sequence[str | Path]) -> Iterator[Path]:
    for root in paths:
        root = Path(root)
        if root.is_file() and not root.is_symlink():
            yield root
        elif root.is_dir():
            for folder, _dirs, names in os.walk(root):  # does not follow links out
                for name in sorted(names):
                    p = Path(folder) / name
                    if p.is_file() and not p.is_symlink():
                        yield p


def scan_for_subject(
    paths: Sequence[str | Path], needles: Sequence[str | float]
) -> list[tuple[Path, str]]:
    """Search every file under ``paths`` for any needle; the purge check.

    Each file is searched twice over:

    - raw bytes, for the needle's text (UTF-8; numbers as ``repr`` and, when integral, without
      ``.0``, found only as whole numbers: ``0.0675`` is not found in ``0.06751`` or
      ``10.0675``) and, for numbers, their 8-byte IEEE doubles in both byte orders. This finds
      JSON, CSV, logs, uncompressed Parquet pages, ``.npy`` arrays and rows that SQLite
      deleted but left in free pages (run ``VACUUM`` or ``PRAGMA secure_delete``);
    - decoded content: Parquet cells (every column), every table of a SQLite database through
      SQL (opened read-only), and the members of zip files (skops artifacts) as bytes. A text
      needle matches a cell whose text contains it; a number matches an equal numeric cell
      or a text cell holding its text form as a whole number (:func:`contains_needle`).

    Symbolic links are not followed. Choose needles that only the subject holds
    (:func:`subject_needles`); a common value is found in everyone's rows.

    Parameters
    ----------
    paths : sequence of str or Path
        Files or folders (searched recursively).
    needles : sequence of str or float
        Subject ids and feature values.

    Returns
    -------
    list of (Path, str)
        One entry per file and needle found, the needle as text (``repr`` for numbers),
        sorted; empty when nothing is found.

    Raises
    ------
    DeletionError
        If ``needles`` is empty or holds an empty string or a non-finite number.
    """
    needles = list(needles)
    if not needles:
        raise DeletionError("scan_for_subject needs at least one needle")
    for n in needles:
        bad = (n == "") if isinstance(n, str) else not np.isfinite(float(n))
        if bad:
            raise DeletionError(f"needle {n!r} is empty or not finite")
    hits = set()
    for path in _files(paths):
        for i in _scan_file(path, needles):
            n = needles[i]
            hits.add((path, n if isinstance(n, str) else repr(float(n))))
    return sorted(hits, key=lambda h: (str(h[0]), h[1]))
