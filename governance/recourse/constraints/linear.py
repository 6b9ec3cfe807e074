"""Linear constraint on values after an action: sum of a_i * x_i over any features at most b."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from governance.exceptions import ActionSetError
from governance.recourse.constraints.abstract import (
    Constraint,
    check_keys,
    check_names_exist,
    get_field,
)

_TOL = 1e-9


class LinearConstraint(Constraint):
    """``sum(coefficients[i] * x_i) <= bound`` for the values ``x`` after every action.

    Any numeric features may take part, binary indicators included ("months with low
    spending plus months with high spending <= 6": names ``[low, high]``, coefficients
    ``[1, 1]``, bound 6). An equality is two constraints with opposite signs. Category features
    cannot: their codes are labels, not quantities.

    Like every constraint, it filters candidate joint actions, so reachable sets, responsiveness
    and the recourse search all honour it; the null action stays available to a person whose
    current values already break it, as reachml does for every constraint. ``check_rows``
    flags observed rows that break it.

    Parameters
    ----------
    names : sequence of str
        At least two features.
    coefficients : sequence of float
        One finite coefficient per feature, not all zero.
    bound : float
    note : str, default=""

    Examples
    --------
    >>> c = LinearConstraint(["low", "high"], [1, 1], 6)
    >>> print(c)
    `low` + `high` must be at most 6 after any action.
    >>> c.check_rows(np.array([[2, 4], [5, 2]])).tolist()
    [True, False]
    """

    kind = "linear"

    def __init__(
        self, names: Sequence[str], coefficients: Sequence[float], bound: float, note: str = ""
    ) -> None:
        super().__init__(names, note)
        try:
            coef = np.asarray([float(c) for c in coefficients], dtype=float)
            b = float(bound)
        except (TypeError, ValueError) as exc:
            raise ActionSetError(f"linear constraint needs numbers: {exc}") from exc
        if coef.shape != (len(self.names),):
            raise ActionSetError(
                f"linear constraint has {len(self.names)} features but {coef.size} coefficients"
            )
        if not (np.all(np.isfinite(coef)) and np.isfinite(b)):
            raise ActionSetError("linear constraint coefficients and bound must be finite")
        if not np.any(coef != 0):
            raise ActionSetError("linear constraint needs a non-zero coefficient")
        self.coefficients = coef
        self.bound = b

    def _params(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "coefficients": [float(c) for c in self.coefficients],
            "bound": self.bound,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinearConstraint:
        check_keys(d, {"names", "coefficients", "bound"}, cls.kind)
        names = get_field(d, "names", cls.kind)
        coefficients = get_field(d, "coefficients", cls.kind)
        if not isinstance(names, list) or not isinstance(coefficients, list):
            raise ActionSetError("linear constraint 'names' and 'coefficients' must be lists")
        return cls(names, coefficients, get_field(d, "bound", cls.kind), note=d.get("note", ""))

    def check_compatibility(self, action_set) -> None:
        check_names_exist(self, action_set)
        cats = [n for n in self.names if action_set[n].type == "category"]
        if cats:
            raise ActionSetError(
                f"linear constraint cannot use category feature(s) {', '.join(cats)}; their "
                "codes are labels (use one bool indicator per category)"
            )

    def _slack(self) -> float:
        return _TOL * max(1.0, abs(self.bound))

    def check_rows(self, V: np.ndarray) -> np.ndarray:
        return np.asarray(V, dtype=float) @ self.coefficients <= self.bound + self._slack()

    def feasible(self, x, a, c, a_lb, a_ub) -> np.ndarray:
        after = np.asarray(x, dtype=float)[None, :] + np.asarray(c, dtype=float)
        return after @ self.coefficients <= self.bound + self._slack()

    def __str__(self) -> str:
        terms = []
        for k, (n, w) in enumerate(zip(self.names, self.coefficients, strict=True)):
            sign = "-" if w < 0 else "+"
            mag = abs(w)
            term = f"`{n}`" if mag == 1 else f"{mag:g}·`{n}`"
            terms.append(("-" + term if sign == "-" else term) if k == 0 else f"{sign} {term}")
        return f"{' '.join(terms)} must be at most {self.bound:g} after any action."
