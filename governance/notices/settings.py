"""Who sends a notice and what the reason linter refuses: the lender's notice settings.

Read from a YAML file (``notice.yaml`` in the data folder, or $GOVERNANCE_NOTICE_CONFIG)::

    creditor:
      name: Example Bank, N.A.
      address: [1 Main Street, Springfield, IL 62701]
    agency:                       # who supervises the creditor (Reg B Appendix A)
      name: Consumer Financial Protection Bureau
      address: [1700 G Street NW, Washington, DC 20552]
    due_days: 30                  # after the application was complete
    fcra:                         # optional: a consumer report was used
      agency: {name: ..., address: [...], phone: ...}
      score_feature: bureau_score # optional: the decision's feature holding the credit score
      score_range: [300, 850]
    controller: {...}             # optional: for the GDPR automated-decision letter
    protected_terms: [...]        # replaces the default list below
    generic_phrases: [...]        # replaces the default list below
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from governance.exceptions import NoticeError

ENV_NOTICE_CONFIG = "GOVERNANCE_NOTICE_CONFIG"

# Prohibited bases of ECOA / Regulation B 1002.2(z) and special categories of GDPR Art. 9: a
# reason naming one of them is refused. Matched as whole words in the feature's name (camelCase
# and underscores split) and in the statement.
PROTECTED_TERMS = (
    "race",
    "racial",
    "color",
    "colour",
    "religion",
    "religious",
    "national origin",
    "nationality",
    "ethnic",
    "ethnicity",
    "sex",
    "gender",
    "male",
    "female",
    "marital",
    "married",
    "age",
    "public assistance",
    "pregnancy",
    "disability",
    "sexual orientation",
    "foreign worker",
    "health",
    "political",
    "trade union",
    "genetic",
    "biometric",
)
# Regulation B 1002.9(b)(2): "statements that the adverse action was based on the creditor's
# internal standards or policies or that the applicant failed to achieve a qualifying score on
# the creditor's credit scoring system are insufficient".
GENERIC_PHRASES = (
    "internal standard",
    "internal policy",
    "internal policies",
    "credit policy",
    "our policies",
    "insufficient score",
    "insufficient credit score",
    "qualifying score",
    "score too low",
    "low score",
    "did not meet our",
    "does not meet our",
    "failed to achieve",
    "credit scoring system",
    "model output",
)


@dataclass(frozen=True)
class Party:
    """A name and postal address (and, where it matters, a phone number)."""

    name: str
    address: tuple[str, ...] = ()
    phone: str = ""

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None, what: str) -> Party:
        if not isinstance(d, Mapping) or not str(d.get("name") or "").strip():
            raise NoticeError(f"notice settings: {what} needs a 'name'")
        address = d.get("address") or ()
        if isinstance(address, str):
            address = tuple(line.strip() for line in address.split("\n") if line.strip())
        return cls(str(d["name"]), tuple(str(a) for a in address), str(d.get("phone") or ""))


@dataclass(frozen=True)
class Fcra:
    """The FCRA disclosure block: the consumer reporting agency and, optionally, the score."""

    agency: Party
    score_feature: str | None = None
    score_range: tuple[float, float] | None = None


@dataclass(frozen=True)
class NoticeSettings:
    """Everything a notice needs that the ledger does not hold."""

    creditor: Party
    agency: Party
    due_days: int = 30
    fcra: Fcra | None = None
    controller: Party | None = None
    dpo: str = ""
    supervisory_authority: str = ""
    protected_terms: tuple[str, ...] = PROTECTED_TERMS
    generic_phrases: tuple[str, ...] = GENERIC_PHRASES
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "") -> NoticeSettings:
        if not isinstance(d, Mapping):
            raise NoticeError(f"notice settings {source}: expected a mapping")
        due = d.get("due_days", 30)
        if not isinstance(due, int) or isinstance(due, bool) or due < 0:
            raise NoticeError(f"notice settings {source}: due_days must be a whole number >= 0")
        fcra = d.get("fcra")
        rng = (fcra or {}).get("score_range")
        controller = d.get("controller")
        return cls(
            creditor=Party.from_dict(d.get("creditor"), "creditor"),
            agency=Party.from_dict(d.get("agency"), "agency (the creditor's supervisor)"),
            due_days=due,
            fcra=None
            if not fcra
            else Fcra(
                Party.from_dict(fcra.get("agency"), "fcra.agency"),
                fcra.get("score_feature"),
                (float(rng[0]), float(rng[1])) if rng else None,
            ),
            controller=None if not controller else Party.from_dict(controller, "controller"),
            dpo=str((controller or {}).get("dpo") or ""),
            supervisory_authority=str((controller or {}).get("supervisory_authority") or ""),
            protected_terms=_terms(d.get("protected_terms"), PROTECTED_TERMS),
            generic_phrases=_terms(d.get("generic_phrases"), GENERIC_PHRASES),
            source=source,
        )


def _terms(value: Sequence[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    return tuple(str(v).strip().lower() for v in value if str(v).strip())


def settings_path(home: Path) -> Path:
    """$GOVERNANCE_NOTICE_CONFIG, else ``notice.yaml`` in the data folder."""
    return Path(os.environ.get(ENV_NOTICE_CONFIG) or home / "notice.yaml")


def load_settings(path: str | Path) -> NoticeSettings:
    """Read notice settings from YAML.

    Raises
    ------
    NoticeError
        If the file is missing or lacks the creditor or the supervising agency.
    """
    path = Path(path)
    if not path.exists():
        raise NoticeError(
            f"no notice settings at {path}: write the creditor's name and address and its "
            "supervising agency there (see the README's 'Notices' section)"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise NoticeError(f"notice settings {path} are not valid YAML: {exc}") from exc
    return NoticeSettings.from_dict(data or {}, str(path))
