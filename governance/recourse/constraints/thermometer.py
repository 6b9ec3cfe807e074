"""Thermometer encoding: nested dummies ``1[Z >= z_k]`` that must stay a cumulative code."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from governance.recourse.constraints.abstract import (
    LevelEncoding,
    check_direction,
    check_keys,
    get_field,
    is_binary,
    name_list,
)


class ThermometerEncoding(LevelEncoding):
    """Dummies ``x_k = 1[Z >= z_k]`` for increasing thresholds ``z_0 < z_1 < ...``.

    As in reachml's ``ThermometerEncoding``: a value is valid iff it equals its cumulative
    product (``x_k = 1`` implies ``x_{k'} = 1`` for every lower ``k'``). With ``step_direction``
    +1 actions can only turn on higher dummies, with -1 only turn off dummies that are on.

    Parameters
    ----------
    names : sequence of str
        Bool dummies, lowest threshold first.
    step_direction : {-1, 0, 1}, default=0
    note : str, default=""

    Examples
    --------
    >>> c = ThermometerEncoding(["util_geq_25", "util_geq_50"], step_direction=-1)
    >>> print(c)  # doctest: +NORMALIZE_WHITESPACE
    Actions on [`util_geq_25`, `util_geq_50`] must preserve the thermometer encoding
    (a dummy is 1 only if every lower one is 1), whose underlying value can only decrease.
    """

    kind = "thermometer"

    def __init__(self, names: Sequence[str], step_direction: int = 0, note: str = "") -> None:
        super().__init__(names, note)
        self.step_direction = check_direction(step_direction, self.kind)

    def _params(self) -> dict[str, Any]:
        return {"names": list(self.names), "step_direction": self.step_direction}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ThermometerEncoding:
        check_keys(d, {"names", "step_direction"}, cls.kind)
        return cls(
            get_field(d, "names", cls.kind),
            step_direction=d.get("step_direction", 0),
            note=d.get("note", ""),
        )

    def _levels(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ok = is_binary(V) & np.all(np.cumprod(V, axis=1) == V, axis=1)
        return ok, V.sum(axis=1)

    def __str__(self) -> str:
        s = (
            f"Actions on [{name_list(self.names)}] must preserve the thermometer encoding "
            f"(a dummy is 1 only if every lower one is 1)"
        )
        if self.step_direction > 0:
            return f"{s}, whose underlying value can only increase."
        if self.step_direction < 0:
            return f"{s}, whose underlying value can only decrease."
        return f"{s}."
