"""What a notice says, assembled from the ledger's record of a decision and the settings.

The credit notice carries what Regulation B 1002.9(a)(2) and the Appendix C sample forms ask
for: the action taken, the creditor's name and address, the ECOA notice with the name and
address of the agency that supervises the creditor, and the specific principal reasons (at most
four). An FCRA block is added when the settings name a consumer reporting agency. Beyond what
the regulation asks, the notice lists the changes of the issued recourse: actions that, taken
together, the deciding model would have approved.

The GDPR letter (Art. 22(3), Art. 15(1)(h)) uses the same reviewed statements as the main
factors, says the decision was automated, which information it used, and how to obtain human
intervention, express a point of view and contest it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from governance.notices.lint import LintResult
from governance.notices.settings import NoticeSettings, Party

# Regulation B 1002.9(b)(1); the agency's name and address follow it.
ECOA_NOTICE = (
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating against "
    "credit applicants on the basis of race, color, religion, national origin, sex, marital "
    "status, age (provided the applicant has the capacity to enter into a binding contract); "
    "because all or part of the applicant's income derives from any public assistance "
    "program; or because the applicant has in good faith exercised any right under the "
    "Consumer Credit Protection Act. The Federal agency that administers compliance with this "
    "law concerning this creditor is:"
)
FCRA_RIGHTS = (
    "Our credit decision was based in whole or in part on information obtained in a report "
    "from the consumer reporting agency listed below. You have a right under the Fair Credit "
    "Reporting Act to know the information contained in your credit file at the consumer "
    "reporting agency. The reporting agency played no part in our decision and is unable to "
    "supply specific reasons why we have denied credit to you. You also have a right to a free "
    "copy of your report from the reporting agency, if you request it no later than 60 days "
    "after you receive this notice. In addition, if you find that any information contained in "
    "the report you receive is inaccurate or incomplete, you have the right to dispute the "
    "matter with the reporting agency."
)
ACTIONS_NOTE = (
    "The changes below, made together, would have led the model that decided your application "
    "to approve it. This is information, not an offer or a promise of credit: a later "
    "application is assessed as it stands then."
)


@dataclass(frozen=True)
class NoticeContent:
    """Everything a notice template prints; no formatting."""

    kind: str  # credit or gdpr
    notice_date: date
    decision_id: str
    subject_id: str
    decided_on: date
    completed_on: date
    due_on: date
    creditor: Party
    agency: Party
    reasons: tuple[str, ...]
    actions: tuple[str, ...]
    model: str
    features_used: tuple[str, ...]
    fcra: Mapping[str, Any] | None = None
    controller: Party | None = None
    dpo: str = ""
    supervisory_authority: str = ""
    ecoa_notice: str = ECOA_NOTICE
    fcra_rights: str = FCRA_RIGHTS
    actions_note: str = ACTIONS_NOTE


def _number(value: Any, dtype: str) -> str:
    if isinstance(value, bool) or dtype == "bool":
        return "yes" if value in (1, True, 1.0) else "no"
    if isinstance(value, int | float):
        if dtype == "int" or float(value).is_integer():
            return f"{int(round(value)):,}"
        return f"{value:,.2f}" if abs(value) < 1_000 else f"{value:,.0f}"
    return str(value)


def describe_change(change: Mapping[str, Any], spec: Mapping[str, Any] | None = None) -> str:
    """A recourse change in words: "Gross annual income: from 42,000 to 51,500"."""
    spec = spec or {}
    label = str(spec.get("description") or "")
    if not label or label[0].isdigit() or len(label) > 60:
        # descriptions written for reviewers ("1 if a co-signer ...") read badly here
        label = str(change["feature"]).replace("_", " ")
        label = label[:1].upper() + label[1:]
    dtype = str(spec.get("dtype", ""))
    return f"{label}: from {_number(change['from'], dtype)} to {_number(change['to'], dtype)}"


def due_date(decided_at: datetime, completed_at: datetime | None, days: int) -> datetime:
    """When the notice is due: ``days`` after the application was complete (or, when the log
    does not say, after the decision)."""
    return (completed_at or decided_at) + timedelta(days=days)


def notice_content(
    record: Mapping[str, Any],
    lint: LintResult,
    settings: NoticeSettings,
    *,
    kind: str = "credit",
    issued_at: datetime,
) -> NoticeContent:
    """The notice for one denial.

    Parameters
    ----------
    record : mapping
        The decision as :func:`governance.store.notices.notice_inputs` returns it.
    lint : LintResult
        The linter's verdict; it must be ``ok``.
    kind : {"credit", "gdpr"}

    Raises
    ------
    ValueError
        If the linter refused the reasons (the caller reports its problems first).
    """
    if not lint.ok:
        raise ValueError("the reason linter refused this notice: " + "; ".join(lint.problems))
    if kind not in ("credit", "gdpr"):
        raise ValueError(f"notice kind {kind!r}; expected 'credit' or 'gdpr'")
    specs = {s["name"]: s for s in record.get("feature_specs", [])}
    recourse = record.get("recourse") or {}
    actions = tuple(
        describe_change(c, specs.get(c["feature"])) for c in recourse.get("changes") or []
    )
    decided = record["decided_at"]
    completed = record.get("completed_at")
    fcra = None
    if settings.fcra is not None:
        score = None
        if settings.fcra.score_feature:
            score = (record.get("features") or {}).get(settings.fcra.score_feature)
        fcra = {
            "agency": settings.fcra.agency,
            "score": score,
            "range": settings.fcra.score_range,
            "score_date": decided.date(),
            "key_factors": tuple(lint.statements()),
        }
    return NoticeContent(
        kind=kind,
        notice_date=issued_at.date(),
        decision_id=str(record["decision_id"]),
        subject_id=str(record["subject_id"]),
        decided_on=decided.date(),
        completed_on=(completed or decided).date(),
        due_on=due_date(decided, completed, settings.due_days).date(),
        creditor=settings.creditor,
        agency=settings.agency,
        reasons=tuple(lint.statements()),
        actions=actions,
        model=f"{record['model_name']} {record['model_version']}",
        features_used=_features_used(record.get("feature_specs", [])),
        fcra=fcra,
        controller=settings.controller or settings.creditor,
        dpo=settings.dpo,
        supervisory_authority=settings.supervisory_authority,
    )


def _features_used(specs: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    return tuple(str(s.get("description") or s["name"]) for s in specs)
