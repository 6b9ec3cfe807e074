"""Check a decision log against a model version's contract without running anything.

The same reading and validation the nightly run does (format, column mapping, time zones, the
model's schema), night by night, with no ledger: nothing is written and nothing is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from governance.intake.decision_log import DecisionSource, read_night
from governance.intake.validation import OUT_OF_RANGE, ModelContract, validate_night


@dataclass(frozen=True)
class NightCheck:
    """One night of a log as validation sees it."""

    night: date
    rows: int
    valid: int
    quarantined: int
    out_of_range: int
    checks: list[dict[str, Any]]
    flags: list[dict[str, Any]]

    @property
    def status(self) -> str:
        if self.rows == 0:
            return "empty"
        return "ok" if self.quarantined == 0 else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "night": self.night.isoformat(),
            "status": self.status,
            "rows": self.rows,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "out_of_range": self.out_of_range,
            "checks": self.checks,
            "flags": self.flags,
        }


def check_log(
    source: DecisionSource,
    model: tuple[str, str],
    contract: ModelContract,
    nights: Sequence[date] | None = None,
) -> list[NightCheck]:
    """Validate each night of ``source`` against one model version's contract.

    Parameters
    ----------
    source : DecisionSource
        A file log (its ``nights()`` are used when ``nights`` is None) or any source.
    model : (name, version)
        The version the log's rows must name; rows naming another go to quarantine.
    contract : ModelContract
    nights : sequence of date, optional

    Raises
    ------
    DecisionLogError
        If a night cannot be read or validated as a whole (format, columns, time zones).
    """
    days = list(nights) if nights is not None else list(source.nights())  # type: ignore[attr-defined]
    out = []
    for night in days:
        frame = read_night(source, night)
        result = validate_night(frame, night, {model: contract})
        out_rows = (
            int(result.valid[OUT_OF_RANGE].notna().sum())
            if OUT_OF_RANGE in result.valid.columns else 0
        )
        out.append(
            NightCheck(
                night=night,
                rows=len(frame),
                valid=len(result.valid),
                quarantined=result.n_quarantined_rows,
                out_of_range=out_rows,
                checks=result.checks,
                flags=result.flags,
            )
        )
    return out
