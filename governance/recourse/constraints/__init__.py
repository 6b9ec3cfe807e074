"""Constraints that tie several features of an action set together, one class per module."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from governance.exceptions import ActionSetError
from governance.recourse.constraints.abstract import Constraint
from governance.recourse.constraints.ifthen import Condition, IfThenConstraint
from governance.recourse.constraints.linear import LinearConstraint
from governance.recourse.constraints.linkage import DirectionalLinkage, check_linkage_cycles
from governance.recourse.constraints.onehot import OneHotEncoding
from governance.recourse.constraints.ordinal import OrdinalEncoding
from governance.recourse.constraints.thermometer import ThermometerEncoding

CONSTRAINT_TYPES: dict[str, type[Constraint]] = {
    cls.kind: cls
    for cls in (
        OneHotEncoding,
        OrdinalEncoding,
        ThermometerEncoding,
        DirectionalLinkage,
        IfThenConstraint,
        LinearConstraint,
    )
}


def constraint_from_dict(d: Mapping[str, Any]) -> Constraint:
    """Build a constraint from its JSON form, dispatching on ``d["type"]``.

    Raises
    ------
    ActionSetError
        If the type is unknown or a field is missing or malformed.
    """
    if not isinstance(d, Mapping):
        raise ActionSetError(f"a constraint must be a JSON object; got {type(d).__name__}")
    kind = d.get("type")
    if not isinstance(kind, str) or kind not in CONSTRAINT_TYPES:  # a list is not hashable
        raise ActionSetError(
            f"unknown constraint type {kind!r}; expected one of {', '.join(CONSTRAINT_TYPES)}"
        )
    try:
        return CONSTRAINT_TYPES[kind].from_dict(d)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ActionSetError):
            raise
        raise ActionSetError(f"malformed {kind} constraint: {exc}") from exc


__all__ = [
    "CONSTRAINT_TYPES",
    "Condition",
    "Constraint",
    "DirectionalLinkage",
    "IfThenConstraint",
    "LinearConstraint",
    "OneHotEncoding",
    "OrdinalEncoding",
    "ThermometerEncoding",
    "check_linkage_cycles",
    "constraint_from_dict",
]
