"""Issuing a notice: lint the decision's reasons, assemble the contents, render, and record it.

A notice is issued once per decision and kind: asking again returns the stored record (its
text and HTML as sent), never a re-rendering that could differ from what the applicant got.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from govern_cli.web.documents import notice_documents
from governance.exceptions import NoticeError
from governance.hashing import sha256_bytes
from governance.notices import (
    LintResult,
    NoticeSettings,
    direction_of,
    lint_reasons,
    load_settings,
    notice_content,
    settings_path,
)
from governance.notices.content import due_date
from governance.store import notices as store


def settings_or_none(home: Path | None) -> tuple[NoticeSettings | None, str]:
    """The notice settings, or None and a line saying why (pages still work without them)."""
    from governance import config

    path = settings_path(config.home(home))
    try:
        return load_settings(path), f"Settings: {path}."
    except NoticeError as exc:
        return None, str(exc)


def lint_decision(
    session: Session,
    decision_id: str,
    settings: NoticeSettings | None,
    statements: dict[int, dict] | None = None,
) -> tuple[dict[str, Any], LintResult]:
    """The decision as the notice sees it, and the linter's verdict on its reasons.

    Raises
    ------
    NoticeError
        If the ledger holds no such decision, or it was not a denial.
    """
    record = store.notice_inputs(session, decision_id)
    if record is None:
        raise NoticeError(f"no decision {decision_id!r} in the ledger")
    if record["decision"] != "denied":
        raise NoticeError(
            f"decision {decision_id!r} was {record['decision']}: adverse-action notices are "
            "for denials"
        )
    reasons = [
        {**r, "direction": direction_of(r["feature"], record["action_set"])}
        for r in record["reasons"]
    ]
    kwargs = {}
    if settings is not None:
        kwargs = {
            "protected_terms": settings.protected_terms,
            "generic_phrases": settings.generic_phrases,
        }
    mv_id = record["model_version_id"]
    if statements is None:
        statements = {}
    if mv_id not in statements:  # a page lints many decisions of few versions
        statements[mv_id] = store.statement_map(session, mv_id)
    result = lint_reasons(
        reasons,
        statements[mv_id],
        recourse_status=record["recourse_status"],
        **kwargs,
    )
    return record, result


def blocked_reasons(
    session: Session,
    decision_id: str,
    settings: NoticeSettings | None,
    statements: dict[int, dict] | None = None,
) -> list[str]:
    """Why the linter would refuse this decision's notice (empty when it would not).
    ``statements`` caches each model version's statements across calls."""
    try:
        return list(lint_decision(session, decision_id, settings, statements)[1].problems)
    except NoticeError as exc:
        return [str(exc)]


def notice_id(decision_id: str, kind: str) -> str:
    return "N-" + sha256_bytes(f"{kind}\x00{decision_id}".encode())[:20]


def issue(
    session: Session,
    decision_id: str,
    settings: NoticeSettings,
    *,
    kind: str = "credit",
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Issue (or find) the notice of ``kind`` for a denial; the stored record and whether it
    is new. The caller commits.

    Raises
    ------
    NoticeError
        If the linter refuses the reasons (its problems, joined), or the decision is unknown.
    """
    existing = store.notice_of(session, decision_id, kind)
    if existing is not None:
        return existing, False
    record, result = lint_decision(session, decision_id, settings)
    if not result.ok:
        raise NoticeError(
            f"notice for {decision_id!r} refused by the reason linter: "
            + "; ".join(result.problems)
        )
    content = notice_content(record, result, settings, kind=kind, issued_at=now)
    html, text = notice_documents(content)
    store.record_notice(
        session,
        notice_id=notice_id(decision_id, kind),
        decision_id=decision_id,
        subject_id=record["subject_id"],
        model_version_id=record["model_version_id"],
        kind=kind,
        text=text,
        html=html,
        sha256=sha256_bytes(text.encode()),
        reasons=[r.to_dict() for r in result.reasons],
        flags=list(result.flags),
        issued_at=now,
        due_at=due_date(record["decided_at"], record["completed_at"], settings.due_days),
    )
    return store.notice_of(session, decision_id, kind), True
