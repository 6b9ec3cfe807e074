"""If-then rule on actions: enough action on one feature fixes the action on another."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from governance.exceptions import ActionSetError
from governance.recourse.constraints.abstract import (
    Constraint,
    check_keys,
    check_names_exist,
    get_field,
)

OPS = (">=", "==")
_TOL = 1e-9


@dataclass(frozen=True)
class Condition:
    """``name op value``; ``op`` is ``">="`` or ``"=="`` (reachml's senses ``G`` and ``E``)."""

    name: str
    op: str
    value: float

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ActionSetError(
                f"if_then condition on {self.name!r} has op {self.op!r}; expected one of "
                f"{', '.join(OPS)}"
            )
        value = float(self.value)
        if not np.isfinite(value):
            raise ActionSetError(f"if_then condition on {self.name!r} needs a finite value")
        object.__setattr__(self, "value", value)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "op": self.op, "value": self.value}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> Condition:
        if not isinstance(d, Mapping):
            raise ActionSetError(f"if_then {where!r} must be an object with name, op, value")
        name = str(get_field(d, "name", "if_then"))
        return cls(name, str(d.get("op", ">=")), get_field(d, "value", "if_then"))


class IfThenConstraint(Constraint):
    """If the action on feature A is at least ``v``, the action on feature B is ``w``.

    This is exactly what reachml's ``IfThenConstraint`` enforces in its MIP (an *action-level*
    rule on each feature's own action ``a``, before linkage effects):

    - the if-condition holds when ``a_A >= v``; reachml's MIP treats both senses as ``>=``,
      so ``op="=="`` on the if side means the same as ``">="``;
    - when it holds, ``a_B == w`` (then-op ``"=="``) or ``a_B >= w`` (then-op ``">="``);
    - when it does not hold, ``a_B == 0`` (``"=="``) or ``a_B >= 0`` (``">="``);
    - if feature A cannot increase at ``x`` (its action upper bound is 0), the rule is void.

    Observed rows always satisfy it (``check_rows`` is all True), as in reachml.

    Parameters
    ----------
    if_condition, then_condition : Condition
    note : str, default=""

    Examples
    --------
    >>> c = IfThenConstraint(Condition("a", ">=", 1), Condition("b", "==", 1))
    >>> print(c)  # doctest: +NORMALIZE_WHITESPACE
    If the action on `a` is at least 1, then the action on `b` must be exactly 1;
    otherwise `b` must not change.
    """

    kind = "if_then"

    def __init__(self, if_condition: Condition, then_condition: Condition, note: str = "") -> None:
        super().__init__([if_condition.name, then_condition.name], note)
        self.if_condition = if_condition
        self.then_condition = then_condition

    def _params(self) -> dict[str, Any]:
        return {"if": self.if_condition.to_dict(), "then": self.then_condition.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> IfThenConstraint:
        check_keys(d, {"if", "then"}, cls.kind)
        return cls(
            Condition.from_dict(get_field(d, "if", cls.kind), "if"),
            Condition.from_dict(get_field(d, "then", cls.kind), "then"),
            note=d.get("note", ""),
        )

    def check_compatibility(self, action_set) -> None:
        check_names_exist(self, action_set)
        # reachml checks both values against the features' value bounds
        for cond in (self.if_condition, self.then_condition):
            el = action_set[cond.name]
            if not el.lb <= cond.value <= el.ub:
                raise ActionSetError(
                    f"if_then value {cond.value:g} for {cond.name!r} is outside its bounds "
                    f"[{el.lb:g}, {el.ub:g}]"
                )
            if el.type == "category":
                raise ActionSetError(
                    f"if_then cannot use category feature {cond.name!r}; "
                    f"expected bool, int or float"
                )

    def check_rows(self, V: np.ndarray) -> np.ndarray:
        return np.ones(len(V), dtype=bool)

    def feasible(self, x, a, c, a_lb, a_ub) -> np.ndarray:
        a = np.asarray(a, dtype=float)
        if a_ub[0] == 0:  # reachml adds the then-constraint only when A can increase
            return np.ones(len(a), dtype=bool)
        fires = a[:, 0] >= self.if_condition.value - _TOL
        target = np.where(fires, self.then_condition.value, 0.0)
        if self.then_condition.op == "==":
            return np.abs(a[:, 1] - target) <= _TOL
        return a[:, 1] >= target - _TOL

    def __str__(self) -> str:
        a, b = (f"`{n}`" for n in self.names)
        w = self.then_condition.value
        if self.then_condition.op == "==":
            return (
                f"If the action on {a} is at least {self.if_condition.value:g}, then the action "
                f"on {b} must be exactly {w:g}; otherwise {b} must not change."
            )
        return (
            f"If the action on {a} is at least {self.if_condition.value:g}, then the action "
            f"on {b} must be at least {w:g}; otherwise {b} can only increase."
        )
