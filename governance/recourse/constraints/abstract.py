"""Abstract interface shared by every constraint that spans several features of an action set."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from governance.exceptions import ActionSetError

if TYPE_CHECKING:  # pragma: no cover
    from governance.recourse.action_set import ActionSet


class Constraint(ABC):
    """A rule over several features that every reachable point must satisfy.

    Subclasses are declarative: they hold parameters, render themselves as JSON (``to_dict``) and
    as an English sentence (``str``), check observed rows (``check_rows``) and filter candidate
    joint actions (``feasible``). Solver code lives in :mod:`governance.reachable`, not here.

    Parameters
    ----------
    names : sequence of str
        Features the constraint ties together; they all fall in one part of the partition.
    note : str, default=""
        Free text for reviewers, kept in the JSON file.
    """

    kind: ClassVar[str] = ""

    def __init__(self, names: Sequence[str], note: str = "") -> None:
        names = tuple(str(n) for n in names)
        if len(names) < 2:
            raise ActionSetError(
                f"{self.kind} constraint needs at least 2 features; got {list(names)}"
            )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ActionSetError(f"{self.kind} constraint lists {', '.join(dup)} more than once")
        self._names = names
        self.note = str(note or "")

    @property
    def names(self) -> tuple[str, ...]:
        """Features the constraint ties together, in the order given."""
        return self._names

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of the constraint (the ``constraints`` entries of the file)."""
        out: dict[str, Any] = {"type": self.kind, **self._params()}
        if self.note:
            out["note"] = self.note
        return out

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Parameters that define the constraint, as JSON-ready values."""

    @classmethod
    @abstractmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Constraint:
        """Build the constraint from its JSON form."""

    # -- checks ------------------------------------------------------------------------------
    @abstractmethod
    def check_compatibility(self, action_set: ActionSet) -> None:
        """Raise :class:`ActionSetError` if the constraint does not fit ``action_set``."""

    @abstractmethod
    def check_rows(self, V: np.ndarray) -> np.ndarray:
        """Return a boolean mask of the observed rows that satisfy the constraint.

        Parameters
        ----------
        V : ndarray of shape (n_rows, len(names))
            Values of the constraint's features, columns in ``names`` order.
        """

    @abstractmethod
    def feasible(
        self,
        x: np.ndarray,
        a: np.ndarray,
        c: np.ndarray,
        a_lb: np.ndarray,
        a_ub: np.ndarray,
    ) -> np.ndarray:
        """Return a boolean mask of the candidate joint actions that satisfy the constraint.

        Parameters
        ----------
        x : ndarray of shape (len(names),)
            Current values of the constraint's features.
        a : ndarray of shape (n_candidates, len(names))
            Each feature's own action (before effects of directional linkages).
        c : ndarray of shape (n_candidates, len(names))
            Each feature's total change, so the new values are ``x + c``.
        a_lb, a_ub : ndarray of shape (len(names),)
            Each feature's action bounds at ``x`` (``LB_j(x)``, ``UB_j(x)``).
        """

    # -- built-ins ---------------------------------------------------------------------------
    def _key(self) -> str:
        d = self.to_dict()
        d.pop("note", None)
        return json.dumps(d, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Constraint) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self._params().items())
        return f"{type(self).__name__}({params})"

    @abstractmethod
    def __str__(self) -> str:
        """One English sentence a reviewer can read."""


def name_list(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def check_names_exist(constraint: Constraint, action_set: ActionSet) -> None:
    missing = [n for n in constraint.names if n not in action_set]
    if missing:
        raise ActionSetError(
            f"{constraint.kind} constraint refers to unknown feature(s) {', '.join(missing)}; "
            f"known: {', '.join(action_set.names)}"
        )


def check_bool(constraint: Constraint, action_set: ActionSet) -> None:
    bad = [n for n in constraint.names if action_set[n].type != "bool"]
    if bad:
        raise ActionSetError(
            f"{constraint.kind} constraint needs bool features; "
            f"{', '.join(f'{n!r} is {action_set[n].type}' for n in bad)}"
        )


def get_field(d: Mapping[str, Any], key: str, kind: str) -> Any:
    if key not in d:
        raise ActionSetError(f"{kind} constraint is missing the field {key!r}")
    return d[key]


def check_keys(d: Mapping[str, Any], allowed: set[str], kind: str) -> None:
    extra = sorted(set(d) - allowed - {"type", "note"})
    if extra:
        raise ActionSetError(
            f"{kind} constraint has unknown field(s) {', '.join(extra)}; "
            f"expected {', '.join(sorted(allowed))}"
        )


def check_direction(value: Any, kind: str) -> int:
    if value not in (-1, 0, 1) or isinstance(value, bool):
        raise ActionSetError(f"{kind} step_direction must be -1, 0 or 1; got {value!r}")
    return int(value)


class LevelEncoding(Constraint):
    """Shared logic of encodings whose valid values are ordered levels (ordinal, thermometer).

    Subclasses define ``_levels(V) -> (valid, level)``. With ``step_direction`` +1 a person can
    only move to a level at least their current one, with -1 at most; 0 allows any valid level.
    This is the reachability matrix reachml builds for these encodings, written as a rule.
    """

    step_direction: int

    @abstractmethod
    def _levels(self, V: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (valid, level) per row of 0/1 values ``V``."""

    def check_compatibility(self, action_set: ActionSet) -> None:
        check_names_exist(self, action_set)
        check_bool(self, action_set)

    def check_rows(self, V: np.ndarray) -> np.ndarray:
        return self._levels(np.asarray(V, dtype=float))[0]

    def feasible(self, x, a, c, a_lb, a_ub) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        ok0, lev0 = self._levels(x[None, :])
        if not ok0[0]:
            return np.zeros(len(c), dtype=bool)  # reachml: an invalid start reaches nothing
        ok, lev = self._levels(x[None, :] + np.asarray(c, dtype=float))
        if self.step_direction > 0:
            ok &= lev >= lev0[0]
        elif self.step_direction < 0:
            ok &= lev <= lev0[0]
        return ok


def is_binary(V: np.ndarray) -> np.ndarray:
    return np.all((V == 0) | (V == 1), axis=1)
