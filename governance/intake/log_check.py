"""Check a decision log against a model version's contract without running anything.

The same reading and validation the nightly run does (format, column mapping, time zones, the
model's schema), night by night, with no ledger: nothing is written and nothing is scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from governance.intake.decision_log import MODEL_NAME, MODEL_VERSION, DecisionSource, read_night
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
    other_models: int = 0

    @property
    def status(self) -> str:
        """``empty`` (no rows of the model), ``ok`` or ``failed`` (rows would be quarantined)."""
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
            "other_models": self.other_models,
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
        The version checked; rows naming another model or version are counted
        (``other_models``), not checked.
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
        others = 0
        if {MODEL_NAME, MODEL_VERSION} <= set(frame.columns):
            mine = (frame[MODEL_NAME].astype(str) == model[0]) & (
                frame[MODEL_VERSION].astype(str) == model[1]
            )
            others = int((~mine).sum())
            frame = frame.loc[mine].reset_index(drop=True)
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
                other_models=others,
            )
        )
    return out
