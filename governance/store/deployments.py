"""Deployment states in the ledger: the one record of which model version is deployed.

A version is proposed (``candidate``), checked by the redeploy check (``checked``, passed or
failed, with the check's run id and figures) and deployed (``deployed``) only after a passed
check, or ``forced`` over a failed or missing one with a reason. Every change is a new row of
``deployment_events`` with who made it (``actor``), how (``via``) and when; rows are never
updated. The functions here answer every "which version is deployed" question, from a session
the caller passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from governance.exceptions import DeploymentError
from governance.store.models import DeploymentEvent

CANDIDATE = "candidate"
CHECKED = "checked"
DEPLOYED = "deployed"
STATES = (CANDIDATE, CHECKED, DEPLOYED)

HISTORY_COLUMNS = [
    "id",
    "model_name",
    "version",
    "state",
    "at",
    "actor",
    "via",
    "reason",
    "passed",
    "forced",
    "check_run_id",
    "invalidation_rate",
    "gate",
    "previous_version",
]


def _now() -> datetime:
    return datetime.now(UTC)


def _add(session: Session, **values: Any) -> DeploymentEvent:
    values.setdefault("forced", False)
    event = DeploymentEvent(at=values.pop("at", None) or _now(), **values)
    session.add(event)
    session.flush()
    return event


def _latest(session: Session, name: str, state: str, version: str | None = None):  # noqa: ANN202
    stmt = sa.select(DeploymentEvent).where(
        DeploymentEvent.model_name == name, DeploymentEvent.state == state
    )
    if version is not None:
        stmt = stmt.where(DeploymentEvent.version == version)
    return session.scalars(stmt.order_by(DeploymentEvent.id.desc()).limit(1)).first()


def propose_candidate(
    session: Session,
    name: str,
    version: str,
    *,
    actor: str,
    via: str,
    reason: str | None = None,
) -> DeploymentEvent:
    """Record that ``version`` of ``name`` is proposed for deployment (state ``candidate``).

    Parameters
    ----------
    session : Session
    name, version : str
    actor : str
        Who proposed it.
    via : str
        The command or flow run that recorded it (e.g. ``govern deploy``).
    reason : str, optional

    Returns
    -------
    DeploymentEvent
        The new row.
    """
    return _add(
        session, model_name=name, version=version, state=CANDIDATE, actor=actor, via=via,
        reason=reason,
    )


def record_check(
    session: Session,
    name: str,
    version: str,
    *,
    run_id: int,
    passed: bool,
    invalidation_rate: float | None,
    gate: float | None,
    actor: str,
    via: str,
) -> DeploymentEvent:
    """Record the redeploy check's verdict on ``version`` (state ``checked``).

    Call it in the transaction that stores the check's results (``deployment_checks``), so a
    verdict is never recorded without them.

    Parameters
    ----------
    run_id : int
        The check's run in ``runs``.
    passed : bool
        Whether the invalidation rate was within the gate.
    invalidation_rate, gate : float or None
        As the check found and applied them (copied: a rerun of the check replaces its rows).
    actor, via : str
        Who asked for the check, and the command or flow run.
    """
    return _add(
        session,
        model_name=name,
        version=version,
        state=CHECKED,
        actor=actor,
        via=via,
        passed=bool(passed),
        check_run_id=run_id,
        invalidation_rate=invalidation_rate,
        gate=gate,
    )


def latest_check(session: Session, name: str, version: str) -> DeploymentEvent | None:
    """The newest ``checked`` event of ``version``, or None when it was never checked."""
    return _latest(session, name, CHECKED, version)


def record_deployment(
    session: Session,
    name: str,
    version: str,
    *,
    actor: str,
    via: str,
    forced: bool = False,
    reason: str | None = None,
) -> DeploymentEvent:
    """Record that ``version`` of ``name`` is now deployed (state ``deployed``).

    Allowed when the version's newest check passed; when the model has never had a deployed
    version and this one was never checked (a first deployment has no earlier version's
    promises to re-check); or when ``forced``, with a ``reason``. The event names the check it
    followed or overrode (``check_run_id``) and the version it replaces.

    Parameters
    ----------
    session : Session
    name, version : str
    actor : str
        Who deployed it.
    via : str
        The command or flow run.
    forced : bool, default=False
        Deploy over a failed or missing check.
    reason : str, optional
        Why; required when ``forced``.

    Returns
    -------
    DeploymentEvent

    Raises
    ------
    DeploymentError
        If the newest check did not pass (or none ran) and ``forced`` is not set, or
        ``forced`` is set without a reason.
    """
    if forced and not (reason or "").strip():
        raise DeploymentError(f"a forced deployment of {name} {version} needs a reason")
    previous = deployed_version(session, name)
    check = latest_check(session, name, version)
    if not forced:
        if check is None and previous is not None:
            raise DeploymentError(
                f"{name} {version} has not been checked; run the redeploy check first or "
                "force the deployment with a reason"
            )
        if check is not None and not check.passed:
            raise DeploymentError(
                f"{name} {version} failed its redeploy check (run {check.check_run_id}); "
                "force the deployment with a reason to deploy it anyway"
            )
    if reason is None and previous is None and check is None and not forced:
        reason = f"first deployment of {name}: no earlier version's recourse to re-check"
    return _add(
        session,
        model_name=name,
        version=version,
        state=DEPLOYED,
        actor=actor,
        via=via,
        reason=reason,
        forced=bool(forced),
        check_run_id=check.check_run_id if check is not None else None,
        previous_version=previous,
    )


def deployed_version(session: Session, name: str) -> str | None:
    """The version of ``name`` deployed most recently, or None if none ever was."""
    event = _latest(session, name, DEPLOYED)
    return event.version if event is not None else None


def deployed_versions(session: Session, names: Sequence[str] | None = None) -> dict[str, str]:
    """The deployed version of every model (or of ``names``) that has one."""
    newest = (
        sa.select(sa.func.max(DeploymentEvent.id))
        .where(DeploymentEvent.state == DEPLOYED)
        .group_by(DeploymentEvent.model_name)
    )
    stmt = sa.select(DeploymentEvent.model_name, DeploymentEvent.version).where(
        DeploymentEvent.id.in_(newest)
    )
    if names is not None:
        stmt = stmt.where(DeploymentEvent.model_name.in_(list(names)))
    return dict(session.execute(stmt).all())


def version_state(session: Session, name: str, version: str) -> str | None:
    """Where ``version`` stands: ``deployed`` (now), ``retired`` (deployed before, replaced
    since), ``check passed`` / ``check failed`` (newest check), ``candidate``, or None when
    the ledger has no event about it."""
    if deployed_version(session, name) == version:
        return DEPLOYED
    if _latest(session, name, DEPLOYED, version) is not None:
        return "retired"
    check = latest_check(session, name, version)
    if check is not None:
        return "check passed" if check.passed else "check failed"
    if _latest(session, name, CANDIDATE, version) is not None:
        return CANDIDATE
    return None


def deployment_history(
    session: Session, name: str | None = None, version: str | None = None
) -> list[dict[str, Any]]:
    """Every deployment event (of ``name``, of ``version``), oldest first, as dicts with
    :data:`HISTORY_COLUMNS`."""
    stmt = sa.select(DeploymentEvent)
    if name is not None:
        stmt = stmt.where(DeploymentEvent.model_name == name)
    if version is not None:
        stmt = stmt.where(DeploymentEvent.version == version)
    return [
        {c: getattr(e, c) for c in HISTORY_COLUMNS}
        for e in session.scalars(stmt.order_by(DeploymentEvent.id))
    ]
