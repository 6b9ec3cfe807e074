"""Deletion requests (GDPR Art. 17): due dates, tombstone hashes and the salt behind them.

A request runs in this order; the flow in ``flows/`` calls one function per step, and the
``governance.deletion`` modules do no scheduling, no clock reading and no SQL:

1. :func:`due_date` of the request (one calendar month after receipt).
2. :func:`~governance.deletion.retrain.retrain_without`: the subject's rows leave the training
   data of the current version, the recorded recipe is refitted and the result registered as a
   *candidate* version (never deployed here) with the training-data hashes before and after.
3. The exact invalidation check compares the current and candidate models on every issued
   recourse (:func:`~governance.deletion.retrain.recourse_validity`; reasons and fixed status
   are the flow's job).
4. Purge, once the candidate exists (:mod:`governance.deletion.purge`): the training files,
   the Parquet logs we own, a notice for the owner of a read-only log; the tombstone keeps
   only :func:`subject_hash`.
5. :func:`~governance.deletion.scan.scan_for_subject` proves the purge: no file we own still
   holds the subject's id or their feature values.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from governance.exceptions import (
    DeletionError,
)

DUE_DAYS = 30
"""Nominal length of the Art. 17(1) deadline ("without undue delay and in any event within one
month", Art. 12(3)) for places that cannot do calendar arithmetic, such as a SQL alert on overdue
requests. A calendar month lasts 28 to 31 days; :func:`due_date` is the authoritative date."""


SALT_BYTES = 32


_MIN_SALT = 16


_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


# -- dates and tombstones --------------------------------------------------------------------
def due_date(received_at: datetime) -> datetime:
    """Deadline of a request: the same time one calendar month after receipt, in UTC.

    The month is counted on the UTC calendar. When the next month has no such day, the deadline
    is that month's last day (Jan 31 -> Feb 28, or Feb 29 in a leap year; Mar 31 -> Apr 30), as
    Regulation (EEC, Euratom) No 1182/71 Art. 3(2)(c) counts periods expressed in months.

    Parameters
    ----------
    received_at : datetime
        Time of receipt; must carry a time zone.

    Returns
    -------
    datetime
        Time-zone aware, in UTC.

    Raises
    ------
    DeletionError
        If ``received_at`` is naive.

    Examples
    --------
    >>> due_date(datetime(2024, 1, 31, 9, 0, tzinfo=UTC)).isoformat()
    '2024-02-29T09:00:00+00:00'
    """
    if not isinstance(received_at, datetime) or received_at.utcoffset() is None:
        raise DeletionError(
            f"received_at {received_at!r} must be a time-zone aware datetime; got a naive one"
        )
    t = received_at.astimezone(UTC)
    year, month = t.year + t.month // 12, t.month % 12 + 1
    return t.replace(year=year, month=month, day=min(t.day, calendar.monthrange(year, month)[1]))


def subject_hash(subject_id: str, salt: bytes) -> str:
    """Salted hash of a subject id for tombstones: hex HMAC-SHA256 keyed by ``salt``.

    Subject ids are short and guessable (``S00001234``), so a plain hash is as good as the id:
    anyone could hash every candidate id. The salt is a secret kept outside the ledger (a 0600
    file, see :func:`load_or_create_salt`, or a secret store); with it the operator can answer
    "was this person's request carried out?", without it the tombstone names nobody. Losing
    the salt loses that ability, not any data.

    Parameters
    ----------
    subject_id : str
        The subject's id as the decision log writes it.
    salt : bytes
        At least 16 secret bytes.

    Returns
    -------
    str
        64 lowercase hex characters.

    Raises
    ------
    DeletionError
        If the id is empty or not a string, or the salt is shorter than 16 bytes.
    """
    if not isinstance(subject_id, str) or not subject_id:
        raise DeletionError(
            f"subject id must be a non-empty string; got {type(subject_id).__name__} "
            f"of length {len(subject_id) if isinstance(subject_id, str) else 'n/a'}"
        )
    if not isinstance(salt, bytes) or len(salt) < _MIN_SALT:
        raise DeletionError(f"salt must be at least {_MIN_SALT} bytes; got {_describe_salt(salt)}")
    return hmac.new(salt, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()


def _describe_salt(salt: object) -> str:
    return f"{len(salt)} bytes" if isinstance(salt, bytes) else type(salt).__name__


def load_or_create_salt(path: str | Path) -> bytes:
    """Read the tombstone salt, creating it (32 random bytes, mode 0600) on first use.

    Creation is atomic: the bytes go to a private temporary file that is hard-linked into place,
    so two processes starting at once end up with the same salt and nobody reads a half-written
    one.

    Parameters
    ----------
    path : str or Path
        The salt file; keep it out of the ledger and its backups' reach.

    Returns
    -------
    bytes
        The 32-byte salt.

    Raises
    ------
    DeletionError
        If the file is readable or writable by group or others, or does not hold 32 bytes.
    """
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(SALT_BYTES))
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):  # another process won the race
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise DeletionError(
            f"salt file {path} has mode {mode:04o}; expected 0600 (owner only), it is a secret"
        )
    salt = path.read_bytes()
    if len(salt) != SALT_BYTES:
        raise DeletionError(f"salt file {path} holds {len(salt)} bytes; expected {SALT_BYTES}")
    return salt


def check_ids(subject_ids: Sequence[str]) -> list[str]:
    # Messages never echo ids: errors end up in run logs, which a purge does not rewrite.
    if isinstance(subject_ids, str | bytes):
        raise DeletionError("subject_ids must be a sequence of ids, not a single string")
    ids = [str(s) for s in subject_ids]
    if not ids or any(not s for s in ids):
        raise DeletionError(
            f"subject_ids must hold at least one id and no empty one; got {len(ids)} ids, "
            f"{sum(not s for s in ids)} empty"
        )
    return sorted(set(ids))


def check_request_id(request_id: str) -> str:
    if not isinstance(request_id, str) or not _REQUEST_ID.match(request_id):
        raise DeletionError(
            f"request id {request_id!r} must be 1-128 letters, digits, '.', '_', ':' or '-'"
        )
    return request_id


def read_salt(path: str | Path) -> bytes | None:
    """The tombstone salt if one was ever created, else None (nobody was erased yet)."""
    path = Path(path)
    if not path.exists():
        return None
    return load_or_create_salt(path)
