"""One-hot encoding: exactly (or at most) ``limit`` of a group of dummies are 1 after any action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from governance.exceptions import ActionSetError
from governance.recourse.constraints.abstract import (
    Constraint,
    check_bool,
    check_keys,
    check_names_exist,
    get_field,
    is_binary,
    name_list,
)

LIMIT_TYPES = ("equal", "max")


class OneHotEncoding(Constraint):
    """Dummies of one categorical attribute stay a valid one-hot code.

    As in reachml's ``OneHotEncoding``: after the action the dummies sum to exactly ``limit``
    (``limit_type="equal"``) or to at most ``limit`` (``"max"``).

    Parameters
    ----------
    names : sequence of str
        Bool features ``1[Z = z_k]`` of the attribute.
    limit : int, default=1
        Required (or largest) number of dummies that are 1.
    limit_type : {"equal", "max"}, default="equal"
    note : str, default=""

    Examples
    --------
    >>> print(OneHotEncoding(["rent", "own", "mortgage"]))  # doctest: +NORMALIZE_WHITESPACE
    Actions on [`rent`, `own`, `mortgage`] must preserve the one-hot encoding:
    exactly 1 of them is 1.
    """

    kind = "one_hot"

    def __init__(
        self, names: Sequence[str], limit: int = 1, limit_type: str = "equal", note: str = ""
    ) -> None:
        super().__init__(names, note)
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)):
            raise ActionSetError(f"one_hot limit must be an integer; got {limit!r}")
        if not 0 <= int(limit) <= len(self.names):
            raise ActionSetError(
                f"one_hot limit must be between 0 and {len(self.names)}; got {limit}"
            )
        if limit_type not in LIMIT_TYPES:
            raise ActionSetError(
                f"one_hot limit_type must be one of {', '.join(LIMIT_TYPES)}; got {limit_type!r}"
            )
        self.limit = int(limit)
        self.limit_type = str(limit_type)

    def _params(self) -> dict[str, Any]:
        return {"names": list(self.names), "limit": self.limit, "limit_type": self.limit_type}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OneHotEncoding:
        check_keys(d, {"names", "limit", "limit_type"}, cls.kind)
        return cls(
            get_field(d, "names", cls.kind),
            limit=d.get("limit", 1),
            limit_type=d.get("limit_type", "equal"),
            note=d.get("note", ""),
        )

    def check_compatibility(self, action_set) -> None:
        check_names_exist(self, action_set)
        check_bool(self, action_set)

    def _sum_ok(self, s: np.ndarray) -> np.ndarray:
        return s == self.limit if self.limit_type == "equal" else s <= self.limit

    def check_rows(self, V: np.ndarray) -> np.ndarray:
        V = np.asarray(V, dtype=float)
        return is_binary(V) & self._sum_ok(V.sum(axis=1))

    def feasible(self, x, a, c, a_lb, a_ub) -> np.ndarray:
        # reachml: sum(a) = limit - sum(x) (or <=); written on the new values x + c
        return self._sum_ok(np.round(np.asarray(x, float).sum() + np.asarray(c).sum(axis=1), 9))

    def __str__(self) -> str:
        qty = "exactly" if self.limit_type == "equal" else "at most"
        return (
            f"Actions on [{name_list(self.names)}] must preserve the one-hot encoding: "
            f"{qty} {self.limit} of them is 1."
        )
