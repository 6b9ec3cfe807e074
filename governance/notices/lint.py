"""The reason linter: what may be said to an applicant as a principal reason for a denial.

A notice is refused (never patched: the linter does not swap in other reasons) when a reason
has no reviewed statement, names a protected attribute, or says nothing specific ("internal
standards", "insufficient score"; Regulation B 1002.9(b)(2)). Reasons that acting on cannot
help (responsiveness 0, or no feasible action at all) are flagged for the reviewer, not hidden.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from governance.notices.settings import GENERIC_PHRASES, PROTECTED_TERMS

MAX_REASONS = 4  # Regulation B, official interpretation 9(b)(2)-1: no more than four
DIRECTIONS = ("any", "high", "low")


def words(text: str) -> str:
    """Lower-case words of a name or a sentence: camelCase and underscores split, so
    ``ForeignWorker`` and ``foreign_worker`` both read "foreign worker"."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(text))
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def mentions(text: str, term: str) -> bool:
    """Whether ``term`` appears in ``text`` as whole words."""
    t = words(term)
    return bool(t) and f" {t} " in f" {words(text)} "


def direction_of(feature: str, action_set: Mapping[str, Any] | None) -> str:
    """Which way a reason points, from the action set: a feature that may only move down to
    help is too ``high``, one that may only move up too ``low``; otherwise ``any``."""
    for f in (action_set or {}).get("features", []):
        if f.get("name") == feature:
            step = f.get("step_direction") or 0
            return "high" if step < 0 else "low" if step > 0 else "any"
    return "any"


@dataclass(frozen=True)
class ReasonLine:
    """One principal reason as a notice states it."""

    rank: int
    feature: str
    direction: str
    statement: str | None
    mu: float | None = None
    no_feasible_action: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "feature": self.feature,
            "direction": self.direction,
            "statement": self.statement,
            "mu": self.mu,
        }


@dataclass(frozen=True)
class LintResult:
    """The reasons a notice would give, what refuses it, and what a reviewer should know."""

    reasons: tuple[ReasonLine, ...]
    problems: tuple[str, ...]
    flags: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def statements(self) -> list[str]:
        """The distinct statements, strongest reason first (two features may share one)."""
        return list(dict.fromkeys(r.statement for r in self.reasons if r.statement))


def lookup(statements: Mapping[tuple[str, str], str], feature: str, direction: str) -> str | None:
    """The reviewed statement for (feature, direction), else the feature's ``any`` statement."""
    return statements.get((feature, direction)) or statements.get((feature, "any"))


def lint_reasons(
    reasons: Sequence[Mapping[str, Any]],
    statements: Mapping[tuple[str, str], str],
    *,
    protected_terms: Sequence[str] = PROTECTED_TERMS,
    generic_phrases: Sequence[str] = GENERIC_PHRASES,
    recourse_status: str | None = None,
) -> LintResult:
    """Check a denial's principal reasons against the reviewed statements.

    Parameters
    ----------
    reasons : sequence of mapping
        The ledger's reasons, each with ``rank``, ``feature``, ``direction`` and ``mu`` (the
        responsiveness, None when not scored) and optionally ``no_feasible_action``.
    statements : mapping of (feature, direction) to str
        The model version's current reviewed statements.
    recourse_status : str, optional
        The verification verdict; ``fixed`` is flagged (no action can lead to approval).

    Returns
    -------
    LintResult
        ``problems`` non-empty means the notice must not be issued as it stands.
    """
    ranked = sorted(reasons, key=lambda r: r["rank"])[:MAX_REASONS]
    problems: list[str] = []
    flags: list[str] = []
    lines = []
    if not ranked:
        problems.append("no principal reasons are recorded for this denial")
    for r in ranked:
        feature, direction = str(r["feature"]), str(r.get("direction") or "any")
        statement = lookup(statements, feature, direction)
        mu = r.get("mu")
        no_action = r.get("no_feasible_action")
        lines.append(ReasonLine(int(r["rank"]), feature, direction, statement, mu, no_action))
        label = f"reason {r['rank']} ({feature})"
        if not statement or not statement.strip():
            problems.append(f"{label} has no reviewed statement for direction '{direction}'")
        for term in protected_terms:
            if mentions(feature, term) or (statement and mentions(statement, term)):
                problems.append(f"{label} names a protected attribute ('{term}')")
                break
        if statement:
            low = words(statement)
            for phrase in generic_phrases:
                if words(phrase) and words(phrase) in low:
                    problems.append(
                        f"{label} is generic ('{statement}' says '{phrase}'): "
                        "Regulation B 1002.9(b)(2) requires the specific reason"
                    )
                    break
        if no_action:
            flags.append(f"{label}: no feasible action under the action set changes it")
        elif mu is not None and mu == 0:
            flags.append(
                f"{label} has responsiveness 0: no action on it alone can lead to approval"
            )
    if recourse_status == "fixed":
        flags.append("the denial is fixed: no action the applicant can take leads to approval")
    return LintResult(tuple(lines), tuple(problems), tuple(flags))
