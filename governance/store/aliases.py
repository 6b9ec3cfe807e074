"""The history of MLflow registry aliases, which MLflow itself does not keep.

Every move `govern models sync` observes (by polling or from a webhook) or makes (moving
``champion`` after a passed check) is a new row of ``mlflow_alias_events``; the newest row of
an alias is what the ledger last knew, against which the next poll compares.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.store.models import MlflowAliasEvent

POLL, WEBHOOK, GOVERNANCE = "poll", "webhook", "governance"

HISTORY_COLUMNS = [
    "id",
    "registered_model",
    "alias",
    "previous_version",
    "version",
    "observed_at",
    "via",
    "actor",
    "model_name",
    "action",
    "note",
    "tracking_uri",
]


def last_seen(session: Session, registered_model: str, alias: str) -> MlflowAliasEvent | None:
    """The newest recorded move of ``alias``, or None when the ledger never saw it."""
    stmt = (
        sa.select(MlflowAliasEvent)
        .where(
            MlflowAliasEvent.registered_model == registered_model,
            MlflowAliasEvent.alias == alias,
        )
        .order_by(MlflowAliasEvent.id.desc())
        .limit(1)
    )
    return session.scalars(stmt).first()


def record_alias_move(
    session: Session,
    *,
    tracking_uri: str,
    registered_model: str,
    alias: str,
    version: str | None,
    previous_version: str | None,
    via: str,
    actor: str,
    model_name: str,
    action: str | None = None,
    note: str | None = None,
) -> MlflowAliasEvent:
    """Append one alias move (``version`` None: the alias was removed).

    Parameters
    ----------
    tracking_uri : str
        The registry's URI, password masked.
    via : str
        ``poll``, ``webhook`` or ``governance`` (we moved it).
    action : str, optional
        What the move meant for the gate (``proposed``, ``promoted``, ``deployed unchecked``...).
    """
    event = MlflowAliasEvent(
        tracking_uri=tracking_uri[:256],
        registered_model=registered_model,
        alias=alias,
        version=version,
        previous_version=previous_version,
        observed_at=datetime.now(UTC),
        via=via,
        actor=actor[:128],
        model_name=model_name,
        action=action,
        note=note,
    )
    session.add(event)
    session.flush()
    return event


def alias_history(
    session: Session, registered_model: str | None = None, alias: str | None = None
) -> list[dict[str, Any]]:
    """Every recorded alias move (of ``registered_model``, of ``alias``), oldest first, as
    dicts with :data:`HISTORY_COLUMNS`."""
    stmt = sa.select(MlflowAliasEvent)
    if registered_model is not None:
        stmt = stmt.where(MlflowAliasEvent.registered_model == registered_model)
    if alias is not None:
        stmt = stmt.where(MlflowAliasEvent.alias == alias)
    return [
        {c: getattr(e, c) for c in HISTORY_COLUMNS}
        for e in session.scalars(stmt.order_by(MlflowAliasEvent.id))
    ]


__all__ = [
    "GOVERNANCE",
    "HISTORY_COLUMNS",
    "POLL",
    "WEBHOOK",
    "alias_history",
    "last_seen",
    "record_alias_move",
]
