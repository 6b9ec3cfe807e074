"""Action sets users write: a draft inferred from data and a model's schema, and a check of a
written one against the model that says what each feature allows.

A draft is a starting point, not a decision: every choice inferred from data (bounds, grid
steps, directions) carries a note that begins with ``REVIEW:``, and :func:`check_action_set`
lists the notes still marked so.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from governance.exceptions import ActionSetError
from governance.recourse.action_set import JSON_SCHEMA, ActionElement, ActionSet
from governance.recourse.reachable import compile_action_set
from governance.registry.schema import FeatureSchema

REVIEW = "REVIEW:"
# Names that usually count time forward; a draft proposes +1 for them, marked for review.
_INT_STEPS = 200  # int features with a wider range get a coarser draft grid
_FORWARD = re.compile(r"(^|_)(age|ages|years?_since|months?_since|since|tenure)($|_)", re.I)


def draft_action_set(
    X: pd.DataFrame,
    schema: FeatureSchema,
    *,
    immutable: Sequence[str] = (),
    increase_only: Sequence[str] = (),
    decrease_only: Sequence[str] = (),
    name: str = "",
    source: str = "the data",
) -> ActionSet:
    """A draft action set for ``schema``, inferred from the rows ``X``.

    Per feature: immutable if listed in ``immutable``; else value bounds from the schema's
    declared hard bounds, or the range seen in ``X``; grid step 1 for discrete features (a
    power of ten near 1/100 of the range for ints spanning more than 200), the same for
    floats; direction from ``increase_only`` /
    ``decrease_only``, else +1 for names that count time forward (age, ..._since, tenure),
    else either way. Every inferred choice is noted with a ``REVIEW:`` line.

    Parameters
    ----------
    X : DataFrame
        Rows with the schema's columns (categories as labels).
    schema : FeatureSchema
    immutable, increase_only, decrease_only : sequence of str
        The user's word on features; unknown names raise.
    name : str
    source : str
        How to name ``X`` in the notes (a file name).

    Raises
    ------
    ActionSetError
        If a listed name is not a schema feature, is listed twice, or ``X`` lacks a feature.
    """
    known = set(schema.names)
    listed = [*immutable, *increase_only, *decrease_only]
    unknown = sorted(set(listed) - known)
    if unknown:
        raise ActionSetError(
            f"not features of the model: {', '.join(unknown)}; known: {', '.join(schema.names)}"
        )
    twice = sorted({n for n in listed if listed.count(n) > 1})
    if twice:
        raise ActionSetError(f"feature(s) {', '.join(twice)} listed under two choices")
    base = ActionSet.from_data(X, schema, name=name, version="draft")
    n = len(X)
    elements = []
    for el in base:
        spec = schema[el.name]
        notes: list[str] = []
        if el.name in immutable:
            el.actionable = False
            notes.append("immutable (as asked)")
            elements.append(_with_note(el, notes))
            continue
        if el.type == "category":
            notes.append(
                f"{REVIEW} may move to any of its {len(el.categories or ())} categories; "
                "narrow lb/ub (codes) or add constraints if some cannot be reached"
            )
        elif el.type == "bool":
            notes.append(f"{REVIEW} may switch either way")
        else:
            lo, hi = spec.min, spec.max
            if lo is not None or hi is not None:
                el.lb = el.lb if lo is None else float(lo)
                el.ub = el.ub if hi is None else float(hi)
                notes.append(f"bounds from the schema's hard bounds [{_g(el.lb)}, {_g(el.ub)}]")
            else:
                notes.append(
                    f"{REVIEW} bounds [{_g(el.lb)}, {_g(el.ub)}] are the range seen in {n} "
                    f"rows of {source}; set what an applicant can actually reach"
                )
            if el.type == "float":
                el.step_size = None  # the default for the bounds now set
                el.step_size = el.grid_step
                notes.append(f"{REVIEW} grid step {_g(el.grid_step)} (about 1/100 of the range)")
            elif el.ub - el.lb > _INT_STEPS:
                # an int grid of step 1 over a wide range (amounts) is thousands of points per
                # applicant; a power of ten near 1/100 of the range keeps it near 100
                el.step_size = float(10 ** math.floor(math.log10((el.ub - el.lb) / 100.0)))
                notes.append(f"{REVIEW} grid step {_g(el.step_size)} (about 1/100 of the range)")
        if el.type != "category":
            if el.name in increase_only:
                el.step_direction = 1
                notes.append("can only increase (as asked)")
            elif el.name in decrease_only:
                el.step_direction = -1
                notes.append("can only decrease (as asked)")
            elif _FORWARD.search(el.name):
                el.step_direction = 1
                notes.append(f"{REVIEW} can only increase: the name counts time forward")
            else:
                notes.append(
                    f"{REVIEW} either direction: data cannot tell; set step_direction +1 or -1 "
                    "if it can only move one way"
                )
        elements.append(_with_note(el, notes))
    return ActionSet(
        elements,
        name=name,
        version="draft",
        description=(
            f"DRAFT inferred from {n} rows of {source}: review every note that begins with "
            f"'{REVIEW}', then set 'version'."
        ),
    )


def schema_errors(d: Any) -> list[str]:
    """Where the JSON form ``d`` breaks :data:`JSON_SCHEMA`, one line per error (path: what).

    The format's own checks (:meth:`ActionSet.from_dict`) go further (bounds against types,
    constraints against features); this names structural mistakes by their place in the file.
    """
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(JSON_SCHEMA.read_text()))
    out = []
    for err in sorted(validator.iter_errors(d), key=lambda e: list(e.absolute_path)):
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        out.append(f"{where}: {err.message}")
    return out


def _with_note(el: ActionElement, notes: list[str]) -> ActionElement:
    el.note = "; ".join(notes)
    return el


def _g(v: float) -> str:
    return "none" if v is None or not math.isfinite(v) else f"{v:g}"


@dataclass(frozen=True)
class ActionSetCheck:
    """What an action set allows for one model.

    Attributes
    ----------
    features : DataFrame
        One row per model feature: ``feature``, ``type``, ``actionable``, ``allows`` (a
        sentence), ``constraints`` (how many tie it to others) and ``review`` (a ``REVIEW:``
        note is still present).
    constraints : list of str
        Each constraint as a sentence.
    violations : DataFrame or None
        With data: :meth:`ActionSet.validate`'s rows (observed rows that break the set).
    """

    features: pd.DataFrame
    constraints: list[str]
    violations: pd.DataFrame | None = None
    pending_review: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "features": self.features.to_dict("records"),
            "constraints": self.constraints,
            "pending_review": self.pending_review,
        }
        if self.violations is not None:
            out["violations"] = len(self.violations)
            out["violations_by_item"] = (
                self.violations.groupby("item").size().astype(int).to_dict()
            )
        return out


def read_action_set(path: str | Path) -> ActionSet:
    """Read an action set file, naming structural mistakes by their place in the file.

    Raises
    ------
    ActionSetError
        If the file is unreadable, breaks the JSON Schema, or fails the format's checks.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ActionSetError(f"action set file {str(path)!r} is unreadable: {exc}") from exc
    errors = schema_errors(d)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ActionSetError(f"action set file {path} breaks the format at {errors[0]}{more}")
    return ActionSet.from_dict(d)


def check_action_set(
    action_set: ActionSet, schema: FeatureSchema, data: pd.DataFrame | None = None
) -> ActionSetCheck:
    """Check ``action_set`` against a model's schema and say what each feature allows.

    Raises
    ------
    ActionSetError
        If it names a feature the model lacks, disagrees with the schema on types or
        categories, or is malformed.
    """
    cas = compile_action_set(action_set, schema)
    counts = {n: 0 for n in schema.names}
    for con in action_set.constraints:
        for n in con.names:
            counts[n] += 1
    rows = []
    for el in cas.elements:
        listed = el.name in action_set
        rows.append(
            {
                "feature": el.name,
                "type": schema[el.name].dtype,
                "actionable": bool(el.actionable),
                "allows": _allows(el) if listed else "immutable (not in the action set)",
                "constraints": counts[el.name],
                "review": REVIEW in (el.note or ""),
            }
        )
    violations = action_set.validate(data) if data is not None else None
    return ActionSetCheck(
        features=pd.DataFrame(rows),
        constraints=[str(c) for c in action_set.constraints],
        violations=violations,
        pending_review=[el.name for el in action_set if REVIEW in (el.note or "")]
        + (["version (still 'draft')"] if action_set.version == "draft" else []),
    )


def _allows(el: ActionElement) -> str:
    if not el.actionable:
        return "immutable"
    if el.type == "category":
        cats = list(el.categories or ())
        lo, hi = int(el.lb), int(el.ub)
        reach = cats[lo : hi + 1]
        shown = ", ".join(reach[:4]) + (", ..." if len(reach) > 4 else "")
        return f"any of {len(reach)} categories ({shown})"
    way = {1: "increase only", -1: "decrease only", 0: "either way"}[int(el.step_direction)]
    if el.type == "bool":
        return f"0 or 1, {way}"
    text = f"{_g(el.lb)} to {_g(el.ub)}, {way}, step {_g(el.grid_step)}"
    if el.step_lb is not None or el.step_ub is not None:
        text += f", change within [{_g(el.step_lb)}, {_g(el.step_ub)}]"
    return text


def load_rows(path: str | Path, schema: FeatureSchema) -> pd.DataFrame:
    """Rows of a CSV or Parquet file with the schema's columns, categories as text."""
    path = Path(path)
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            frame = pd.read_parquet(path)
        elif name.endswith((".csv", ".csv.gz")):
            frame = pd.read_csv(path)
        else:
            raise ActionSetError(f"data file {path} must be .csv or .parquet")
    except (OSError, ValueError) as exc:
        raise ActionSetError(f"data file {path} is unreadable: {exc}") from exc
    missing = [n for n in schema.names if n not in frame.columns]
    if missing:
        raise ActionSetError(f"data file {path} lacks feature(s) {', '.join(missing)}")
    out = frame[schema.names].copy()
    for spec in schema:
        if spec.dtype == "category":
            out[spec.name] = out[spec.name].astype(str)
        else:
            out[spec.name] = pd.to_numeric(out[spec.name], errors="coerce").astype(float)
    return out


__all__ = [
    "REVIEW",
    "schema_errors",
    "ActionSetCheck",
    "check_action_set",
    "draft_action_set",
    "load_rows",
    "read_action_set",
]
