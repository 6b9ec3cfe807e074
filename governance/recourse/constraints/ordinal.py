"""Ordinal encoding: one-hot dummies over ordered levels, optionally only moving up or down."""

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


class OrdinalEncoding(LevelEncoding):
    """Dummies ``1[Z = z_k]`` of an ordinal attribute with levels ``z_0 < z_1 < ...``.

    As in reachml's ``OrdinalEncoding``: exactly one dummy is 1 (``exhaustive=True``) or at most
    one (``exhaustive=False``; all zeros is then the lowest level). With ``step_direction`` +1
    a person can only move to a higher level, with -1 only to a lower one.

    Parameters
    ----------
    names : sequence of str
        Bool dummies, lowest level first.
    exhaustive : bool, default=True
    step_direction : {-1, 0, 1}, default=0
    note : str, default=""

    Examples
    --------
    >>> c = OrdinalEncoding(["edu_hs", "edu_ba", "edu_ms"], step_direction=1)
    >>> print(c)  # doctest: +NORMALIZE_WHITESPACE
    Actions on [`edu_hs`, `edu_ba`, `edu_ms`] must preserve the ordinal encoding
    (exactly one of them is 1), whose level can only increase.
    """

    kind = "ordinal"

    def __init__(
        self,
        names: Sequence[str],
        exhaustive: bool = True,
        step_direction: int = 0,
        note: str = "",
    ) -> None:
        super().__init__(names, note)
        self.exhaustive = bool(exhaustive)
        self.step_direction = check_direction(step_direction, self.kind)

    def _params(self) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "exhaustive": self.exhaustive,
            "step_direction": self.step_direction,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OrdinalEncoding:
        check_keys(d, {"names", "exhaustive", "step_direction"}, cls.kind)
        return cls(
            get_field(d, "names", cls.kind),
            exhaustive=d.get("exhaustive", True),
            step_direction=d.get("step_direction", 0),
            note=d.get("note", ""),
        )

    def _levels(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = V.sum(axis=1)
        ok = is_binary(V) & ((s == 1) if self.exhaustive else (s <= 1))
        # all zeros is level 0 and dummy k is level k + 1 (reachml's lexsort order)
        level = np.where(s > 0, np.argmax(V, axis=1) + 1, 0)
        return ok, level

    def __str__(self) -> str:
        qty = "exactly one" if self.exhaustive else "at most one"
        s = (
            f"Actions on [{name_list(self.names)}] must preserve the ordinal encoding "
            f"({qty} of them is 1)"
        )
        if self.step_direction > 0:
            return f"{s}, whose level can only increase."
        if self.step_direction < 0:
            return f"{s}, whose level can only decrease."
        return f"{s}."
