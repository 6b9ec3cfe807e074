"""Declarative, versioned action sets: which features a person can change, how far and how."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.exceptions import ActionSetError
from governance.hashing import sha256_bytes
from governance.recourse.constraints import (
    Constraint,
    DirectionalLinkage,
    check_linkage_cycles,
    constraint_from_dict,
)
from governance.registry.schema import FeatureSchema

FORMAT = "governance.action_set/1"
BUNDLED = Path(__file__).resolve().parent / "action_sets"
"""Folder of the action sets that ship with the package (one JSON file per data set)."""
JSON_SCHEMA = Path(__file__).resolve().parent / "action_set.schema.json"
"""JSON Schema (draft 2020-12) of the file format; every bundled action set validates."""
VARIABLE_TYPES = ("bool", "int", "float", "category")
_BOUND_TOL = 1e-9
_VALIDATE_COLUMNS = ["row", "item", "kind", "reason"]


def _default_float_step(lb: float, ub: float) -> float:
    """A round grid step of about 1/100 of the range (income 0..1e6 -> 1e4, ratios -> 0.01)."""
    span = ub - lb
    if not (np.isfinite(span) and span > 0):
        return 1.0
    return float(10.0 ** math.floor(math.log10(span / 100.0)))


def _num(v: float | None) -> float | int | None:
    """JSON number for a bound: None for unbounded, int when integral (readable files)."""
    if v is None or not np.isfinite(v):
        return None
    v = float(v)
    return int(v) if v.is_integer() and abs(v) < 2**53 else v


@dataclass
class ActionElement:
    """What one feature allows: mutability, value bounds, direction and size of a change.

    The fields mirror reachml's ``ActionElement``. Edit them in place
    (``A["age"].actionable = False``); :meth:`ActionSet.check` validates the whole set.

    Parameters
    ----------
    name : str
    type : {"bool", "int", "float", "category"}, default="float"
        ``category`` values are integer codes into ``categories``.
    actionable : bool, default=True
        False means the person cannot change it (it may still move as a linkage target).
    lb, ub : float
        Bounds on the feature's *value* after an action.
    step_direction : {-1, 0, 1}, default=0
        +1 can only increase, -1 can only decrease, 0 either.
    step_lb, step_ub : float or None
        Bounds on the size of the change ``a_j``; None is unbounded. ``step_lb <= 0 <= step_ub``.
    step_size : float or None
        Grid spacing. Discrete features default to 1; floats to about 1/100 of ``ub - lb``
        (a power of ten). Floats are continuous for responsiveness sampling; the grid is the
        candidate set of the minimal-cost recourse search.
    categories : tuple of str or None
        Category labels (only for ``type="category"``); must equal the model schema's.
    note : str
        Why the feature is set this way, for reviewers.
    """

    name: str
    type: str = "float"
    actionable: bool = True
    lb: float = -math.inf
    ub: float = math.inf
    step_direction: int = 0
    step_lb: float | None = None
    step_ub: float | None = None
    step_size: float | None = None
    categories: tuple[str, ...] | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.categories is not None:
            self.categories = tuple(str(c) for c in self.categories)
            if self.type == "category" and self.categories:
                if self.lb is None or not np.isfinite(self.lb):
                    self.lb = 0.0
                if self.ub is None or not np.isfinite(self.ub):
                    self.ub = float(len(self.categories) - 1)
        self.lb = -math.inf if self.lb is None else float(self.lb)
        self.ub = math.inf if self.ub is None else float(self.ub)
        if self.type == "bool":  # reachml's BooleanActionElement: bounds fixed to {0, 1}
            self.lb = 0.0 if np.isinf(self.lb) else self.lb
            self.ub = 1.0 if np.isinf(self.ub) else self.ub

    # -- derived -----------------------------------------------------------------------------
    @property
    def discrete(self) -> bool:
        """True for bool, int and category features (enumerated exactly)."""
        return self.type != "float"

    @property
    def grid_step(self) -> float:
        """The grid spacing in use (``step_size`` or its default)."""
        if self.step_size is not None:
            return float(self.step_size)
        return 1.0 if self.discrete else _default_float_step(self.lb, self.ub)

    def action_bounds(self, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Per-person bounds ``LB_j(x) <= a_j <= UB_j(x)`` on the action (reachml semantics).

        ``UB = min(ub - x, step_ub)`` when actionable with direction >= 0, else 0;
        ``LB = max(lb - x, step_lb)`` when actionable with direction <= 0, else 0. Both are
        clipped to include 0, so a person outside the bounds may always stay where they are.
        """
        x = np.asarray(x, dtype=float)
        zero = np.zeros_like(x)
        if not self.actionable:
            return zero, zero.copy()
        if self.step_direction <= 0:
            lo = self.lb - x
            if self.step_lb is not None:
                lo = np.maximum(lo, self.step_lb)
        else:
            lo = zero
        if self.step_direction >= 0:
            hi = self.ub - x
            if self.step_ub is not None:
                hi = np.minimum(hi, self.step_ub)
        else:
            hi = zero
        return np.minimum(lo, 0.0), np.maximum(hi, 0.0)

    # -- checks and serialisation -------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`ActionSetError` naming the offending value if the element is malformed."""
        n = self.name
        if not isinstance(n, str) or not n:
            raise ActionSetError(f"feature name must be a non-empty string; got {n!r}")
        if self.type not in VARIABLE_TYPES:
            raise ActionSetError(
                f"feature {n!r} has type {self.type!r}; expected one of {', '.join(VARIABLE_TYPES)}"
            )
        if not isinstance(self.actionable, (bool, np.bool_)):
            raise ActionSetError(
                f"feature {n!r}: actionable must be true or false; got {self.actionable!r}"
            )
        if math.isnan(self.lb) or math.isnan(self.ub) or self.lb > self.ub:
            raise ActionSetError(f"feature {n!r}: lb {self.lb:g} must be <= ub {self.ub:g}")
        if self.step_direction not in (-1, 0, 1) or isinstance(self.step_direction, bool):
            raise ActionSetError(
                f"feature {n!r}: step_direction must be -1, 0 or 1; got {self.step_direction!r}"
            )
        if self.step_lb is not None and not (float(self.step_lb) <= 0):
            raise ActionSetError(f"feature {n!r}: step_lb must be <= 0; got {self.step_lb!r}")
        if self.step_ub is not None and not (float(self.step_ub) >= 0):
            raise ActionSetError(f"feature {n!r}: step_ub must be >= 0; got {self.step_ub!r}")
        if self.step_size is not None and not (
            np.isfinite(self.step_size) and float(self.step_size) > 0
        ):
            raise ActionSetError(f"feature {n!r}: step_size must be > 0; got {self.step_size!r}")
        step = self.grid_step
        if self.type in ("bool", "category") and step != 1:
            raise ActionSetError(f"{self.type} feature {n!r} needs step_size 1; got {step:g}")
        if self.type == "int" and not (step >= 1 and float(step).is_integer()):
            raise ActionSetError(f"int feature {n!r} needs an integer step_size >= 1; got {step:g}")
        if self.type == "bool" and not (self.lb >= 0 and self.ub <= 1):
            raise ActionSetError(
                f"bool feature {n!r} needs bounds within [0, 1]; got [{self.lb:g}, {self.ub:g}]"
            )
        if self.type == "category":
            if not self.categories:
                raise ActionSetError(f"category feature {n!r} needs a non-empty 'categories'")
            if len(set(self.categories)) != len(self.categories):
                raise ActionSetError(f"category feature {n!r} lists a category twice")
            if self.lb < 0 or self.ub > len(self.categories) - 1:
                raise ActionSetError(
                    f"category feature {n!r}: code bounds [{self.lb:g}, {self.ub:g}] must lie "
                    f"within [0, {len(self.categories) - 1}]"
                )
        elif self.categories is not None:
            raise ActionSetError(f"{self.type} feature {n!r} cannot have categories")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (the ``features`` entries of the file)."""
        return {
            "name": self.name,
            "type": self.type,
            "actionable": bool(self.actionable),
            "lb": _num(self.lb),
            "ub": _num(self.ub),
            "step_direction": int(self.step_direction),
            "step_lb": _num(self.step_lb),
            "step_ub": _num(self.step_ub),
            "step_size": _num(self.step_size),
            "categories": None if self.categories is None else list(self.categories),
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionElement:
        """Build an element from its JSON form; unknown keys are an error."""
        if not isinstance(d, Mapping):
            raise ActionSetError(f"a feature entry must be a JSON object; got {type(d).__name__}")
        allowed = {f.name for f in fields(cls)}
        extra = sorted(set(d) - allowed)
        if extra:
            raise ActionSetError(
                f"feature {d.get('name')!r} has unknown field(s) {', '.join(extra)}; "
                f"expected {', '.join(sorted(allowed))}"
            )
        if "name" not in d:
            raise ActionSetError("a feature entry is missing 'name'")
        kw = dict(d)
        kw["note"] = kw.get("note") or ""
        try:
            for key in ("step_lb", "step_ub", "step_size"):
                if kw.get(key) is not None:
                    kw[key] = float(kw[key])  # a list or object here is malformed, not a crash
            el = cls(**kw)
        except (TypeError, ValueError) as exc:
            raise ActionSetError(f"malformed feature {d.get('name')!r}: {exc}") from exc
        el.check()
        return el


def _codes(col: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Integer codes of category labels; unknown labels and missing values become NaN."""
    lookup = {c: float(i) for i, c in enumerate(categories)}
    return col.map(lambda v: lookup.get(str(v), np.nan) if pd.notna(v) else np.nan).to_numpy(
        dtype=float
    )


def _violations(
    mask: np.ndarray, v: np.ndarray, item: str, kind: str, template: str
) -> list[tuple[int, str, str, str]]:
    """(row, item, kind, reason) for each flagged row; ``template`` may use ``{v}``."""
    return [(int(i), item, kind, template.format(v=v[i])) for i in np.flatnonzero(mask)]


class _ElementSlice:
    """Several elements edited together: ``A[["a", "b"]].actionable = False``."""

    def __init__(self, elements: list[ActionElement]) -> None:
        object.__setattr__(self, "_elements", elements)

    def __len__(self) -> int:
        return len(self._elements)

    def __iter__(self) -> Iterator[ActionElement]:
        return iter(self._elements)

    def __getattr__(self, attr: str) -> list[Any]:
        if attr.startswith("_") or attr not in {f.name for f in fields(ActionElement)}:
            raise AttributeError(attr)
        return [getattr(e, attr) for e in self._elements]

    def __setattr__(self, attr: str, value: Any) -> None:
        if attr not in {f.name for f in fields(ActionElement)} or attr == "name":
            raise AttributeError(f"cannot set {attr!r} on action elements")
        many = isinstance(value, (list, tuple, np.ndarray)) and attr != "categories"
        if many and len(value) != len(self._elements):
            raise ActionSetError(
                f"got {len(value)} values for {attr!r}; expected 1 or {len(self._elements)}"
            )
        for i, el in enumerate(self._elements):
            setattr(el, attr, value[i] if many else value)


class ActionSet:
    """Per-feature action elements plus constraints across features, versioned per model.

    Build one from data (:meth:`from_data`) and edit it by name, or load a hand-written JSON
    file (:meth:`from_json`). Features are matched to a model schema by name; schema features
    absent from the action set are immutable.

    Parameters
    ----------
    elements : iterable of ActionElement
    constraints : iterable of Constraint, default=()
    name, version, description : str
        Provenance; ``version`` is as declared, :attr:`sha256` hashes the content.

    Examples
    --------
    >>> X = pd.DataFrame({"age": [30, 40], "income": [1520.5, 2500.0]})
    >>> A = ActionSet.from_data(X, name="toy")
    >>> A["age"].actionable = False
    >>> A["income"].step_direction = 1
    >>> A.df[["name", "type", "actionable", "step_direction"]].values.tolist()
    [['age', 'int', False, 0], ['income', 'float', True, 1]]
    """

    def __init__(
        self,
        elements: Iterable[ActionElement],
        constraints: Iterable[Constraint] = (),
        *,
        name: str = "",
        version: str = "1",
        description: str = "",
    ) -> None:
        self._elements: dict[str, ActionElement] = {}
        for el in elements:
            if not isinstance(el, ActionElement):
                raise ActionSetError(f"expected ActionElement; got {type(el).__name__}")
            if el.name in self._elements:
                raise ActionSetError(f"feature {el.name!r} appears twice in the action set")
            el.check()
            self._elements[el.name] = el
        if not self._elements:
            raise ActionSetError("an action set needs at least one feature")
        self._constraints: list[Constraint] = []
        self.name = str(name)
        self.version = str(version)
        self.description = str(description)
        for con in constraints:
            self.add_constraint(con)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_data(
        cls,
        X: pd.DataFrame,
        schema: FeatureSchema | None = None,
        *,
        name: str = "",
        version: str = "1",
        description: str = "",
    ) -> ActionSet:
        """Infer defaults from data: bounds from the observed range, types from the schema.

        Every feature starts actionable with direction 0 and no step bounds (reachml's
        defaults). Category features take the schema's categories and code bounds
        ``[0, K-1]``; bool features ``[0, 1]``.

        Parameters
        ----------
        X : DataFrame
            Reference data with the schema's columns; categories as labels or integer codes.
        schema : FeatureSchema or None
            Types and categories; None infers them from ``X`` (``FeatureSchema.from_frame``).
        """
        if not isinstance(X, pd.DataFrame):
            raise ActionSetError(f"from_data expects a DataFrame; got {type(X).__name__}")
        schema = schema if schema is not None else FeatureSchema.from_frame(X)
        missing = [n for n in schema.names if n not in X.columns]
        if missing:
            raise ActionSetError(f"data lacks schema feature(s) {', '.join(missing)}")
        elements = []
        for spec in schema:
            if spec.dtype == "category":
                cats = tuple(spec.categories or ())
                elements.append(ActionElement(spec.name, "category", categories=cats))
                continue
            values = pd.to_numeric(X[spec.name], errors="coerce").to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            if spec.dtype == "bool":
                elements.append(ActionElement(spec.name, "bool", lb=0.0, ub=1.0))
                continue
            lo = float(finite.min()) if finite.size else spec.value_range[0]
            hi = float(finite.max()) if finite.size else spec.value_range[1]
            lo = -math.inf if lo is None else lo
            hi = math.inf if hi is None else hi
            el = ActionElement(spec.name, spec.dtype, lb=lo, ub=hi)
            if spec.dtype == "float":
                el.step_size = _default_float_step(lo, hi)
            elements.append(el)
        return cls(elements, name=name, version=version, description=description)

    # -- access -------------------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return list(self._elements)

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return tuple(self._constraints)

    def __len__(self) -> int:
        return len(self._elements)

    def __iter__(self) -> Iterator[ActionElement]:
        return iter(self._elements.values())

    def __contains__(self, name: object) -> bool:
        return name in self._elements

    def __getitem__(self, key: str | int | slice | Sequence[str]) -> ActionElement | _ElementSlice:
        if isinstance(key, str):
            if key not in self._elements:
                raise ActionSetError(
                    f"feature {key!r} not in action set; known: {', '.join(self.names)}"
                )
            return self._elements[key]
        if isinstance(key, (int, np.integer)):
            return list(self._elements.values())[int(key)]
        if isinstance(key, slice):
            return _ElementSlice(list(self._elements.values())[key])
        if isinstance(key, (list, tuple)):
            return _ElementSlice([self[k] for k in key])  # type: ignore[misc]
        raise ActionSetError(f"index must be a name, position, slice or list of names; got {key!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActionSet) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return (
            f"ActionSet(name={self.name!r}, version={self.version!r}, "
            f"features={len(self)}, constraints={len(self._constraints)})"
        )

    @property
    def df(self) -> pd.DataFrame:
        """One row per feature with every element field."""
        rows = []
        for el in self:
            d = el.to_dict()
            d["lb"], d["ub"] = el.lb, el.ub
            d["step_size"] = el.grid_step
            rows.append(d)
        return pd.DataFrame(rows)

    # -- constraints --------------------------------------------------------------------------
    def add_constraint(self, constraint: Constraint) -> int:
        """Attach ``constraint`` after checking it fits; return its position.

        Raises
        ------
        ActionSetError
            If it names unknown features, does not fit their types, duplicates an existing
            constraint, or closes a cycle of directional linkages.
        """
        if not isinstance(constraint, Constraint):
            raise ActionSetError(f"expected a Constraint; got {type(constraint).__name__}")
        if constraint in self._constraints:
            raise ActionSetError(f"constraint already in the action set: {constraint!r}")
        constraint.check_compatibility(self)
        check_linkage_cycles([*self._constraints, constraint])
        self._constraints.append(constraint)
        return len(self._constraints) - 1

    def drop_constraint(self, index: int) -> Constraint:
        """Remove and return the constraint at ``index``."""
        if not 0 <= index < len(self._constraints):
            raise ActionSetError(
                f"no constraint at position {index}; the set has {len(self._constraints)}"
            )
        return self._constraints.pop(index)

    @property
    def partition(self) -> list[list[str]]:
        """Finest partition of the features in which constrained features share a part."""
        parent = {n: n for n in self._elements}

        def find(n: str) -> str:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        for con in self._constraints:
            root = find(con.names[0])
            for n in con.names[1:]:
                parent[find(n)] = root
        order = {n: i for i, n in enumerate(self._elements)}
        parts: dict[str, list[str]] = {}
        for n in self._elements:
            parts.setdefault(find(n), []).append(n)
        return sorted(parts.values(), key=lambda p: order[p[0]])

    @property
    def actionable_partition(self) -> list[list[str]]:
        """Parts that contain at least one actionable feature."""
        return [p for p in self.partition if any(self._elements[n].actionable for n in p)]

    def neighbours(self, name: str) -> list[str]:
        """Features that share a constraint with ``name`` (itself included), set order."""
        linked = {name}
        for con in self._constraints:
            if name in con.names:
                linked.update(con.names)
        return [n for n in self._elements if n in linked]

    def check(self) -> None:
        """Re-check every element and constraint; raise :class:`ActionSetError` if one is bad.

        Needed after editing elements in place (say, making a linkage source immutable).
        """
        for el in self:
            el.check()
        for con in self._constraints:
            con.check_compatibility(self)
        check_linkage_cycles(self._constraints)

    def check_schema(self, schema: FeatureSchema) -> None:
        """Check the action set can be used with a model's schema (names and categories)."""
        known = set(schema.names)
        for el in self:
            if el.name not in known:
                raise ActionSetError(
                    f"action set feature {el.name!r} is not in the model schema; known: "
                    f"{', '.join(schema.names)}"
                )
            spec = schema[el.name]
            if (el.type == "category") != (spec.dtype == "category"):
                raise ActionSetError(
                    f"feature {el.name!r} is {el.type} in the action set but {spec.dtype} "
                    f"in the schema"
                )
            if el.type == "category" and tuple(el.categories or ()) != tuple(spec.categories or ()):
                raise ActionSetError(
                    f"feature {el.name!r} categories {list(el.categories or ())} differ from "
                    f"the schema's {list(spec.categories or ())}"
                )

    # -- validation of observed rows ----------------------------------------------------------
    def _matrix(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Rows as floats in action-set order; category labels become codes (unknown -> NaN)."""
        if isinstance(X, np.ndarray):
            M = np.asarray(X, dtype=float)
            if M.ndim != 2 or M.shape[1] != len(self):
                raise ActionSetError(
                    f"X must have {len(self)} columns in action-set order; got shape {M.shape}"
                )
            return M
        if not isinstance(X, pd.DataFrame):
            raise ActionSetError(f"X must be a DataFrame or ndarray; got {type(X).__name__}")
        missing = [n for n in self.names if n not in X.columns]
        if missing:
            raise ActionSetError(f"X lacks action-set feature(s) {', '.join(missing)}")
        M = np.empty((len(X), len(self)), dtype=float)
        for j, el in enumerate(self):
            col = X[el.name]
            if el.type == "category" and not pd.api.types.is_numeric_dtype(col):
                M[:, j] = _codes(col, el.categories or ())
            else:
                M[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        return M

    def _bound_exempt(self) -> set[str]:
        # keep_bounds=False targets may leave [lb, ub] through the link (reachml widens them)
        return {
            t
            for c in self._constraints
            if isinstance(c, DirectionalLinkage) and not c.keep_bounds
            for t in c.targets
        }

    def validate(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        """List every violation of the action set in observed rows.

        Checks, per row: missing or non-finite values; integrality of bool/int/category
        features and valid category codes; value bounds of actionable features (as reachml,
        immutable features are not bound-checked, nor are targets of ``keep_bounds=False``
        linkages, which may legitimately leave their bounds); and every constraint.

        Parameters
        ----------
        X : DataFrame or ndarray of shape (n_rows, n_features)
            A frame with the action set's columns (category labels or codes), or a matrix in
            action-set order.

        Returns
        -------
        DataFrame
            Columns ``row`` (position in ``X``), ``item`` (feature name or constraint),
            ``kind`` (``value``, ``type``, ``bound`` or ``constraint``) and ``reason``;
            empty when every row is valid.
        """
        M = self._matrix(X)
        out: list[tuple[int, str, str, str]] = []
        exempt = self._bound_exempt()
        for j, el in enumerate(self):
            v = M[:, j]
            bad = ~np.isfinite(v)
            out += _violations(bad, v, el.name, "value", "value is missing or not finite")
            ok = ~bad
            if el.type == "bool":
                wrong = ok & (v != 0) & (v != 1)
                out += _violations(wrong, v, el.name, "type", "value {v:g} is not 0 or 1")
            elif el.type == "int":
                wrong = ok & (v != np.round(v))
                out += _violations(wrong, v, el.name, "type", "value {v:g} is not an integer")
            elif el.type == "category":
                k = len(el.categories or ())
                wrong = ok & ((v != np.round(v)) | (v < 0) | (v > k - 1))
                msg = f"code {{v:g}} is not a category code 0..{k - 1}"
                out += _violations(wrong, v, el.name, "type", msg)
            if el.type != "float":
                ok &= ~wrong
            if el.actionable and el.name not in exempt:
                lo = ok & (v < el.lb - _BOUND_TOL * max(1.0, abs(el.lb)))
                hi = ok & (v > el.ub + _BOUND_TOL * max(1.0, abs(el.ub)))
                out += _violations(lo, v, el.name, "bound", f"value {{v:g}} is below lb {el.lb:g}")
                out += _violations(hi, v, el.name, "bound", f"value {{v:g}} is above ub {el.ub:g}")
        index = {n: j for j, n in enumerate(self._elements)}
        for con in self._constraints:
            V = M[:, [index[n] for n in con.names]]
            finite = np.all(np.isfinite(V), axis=1)
            ok = np.zeros(len(V), dtype=bool)
            ok[finite] = con.check_rows(V[finite])
            label = f"{con.kind}({', '.join(con.names)})"
            out += _violations(~ok & finite, ok, label, "constraint", str(con).replace("{", "{{"))
        df = pd.DataFrame(out, columns=_VALIDATE_COLUMNS)
        return df.sort_values(["row", "kind", "item"], kind="stable").reset_index(drop=True)

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``format`` governance.action_set/1)."""
        return {
            "format": FORMAT,
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "features": [el.to_dict() for el in self],
            "constraints": [c.to_dict() for c in self._constraints],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ActionSet:
        """Build an action set from its JSON form; every malformed value raises ActionSetError."""
        if not isinstance(d, Mapping):
            raise ActionSetError(f"an action set must be a JSON object; got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ActionSetError(f"action set format is {d.get('format')!r}; expected {FORMAT!r}")
        top = {"format", "name", "version", "description", "features", "constraints"}
        extra = sorted(set(d) - top)
        if extra:
            raise ActionSetError(f"action set has unknown field(s) {', '.join(extra)}")
        feats = d.get("features")
        if not isinstance(feats, list) or not feats:
            raise ActionSetError("action set needs a non-empty 'features' list")
        cons = d.get("constraints") or []
        if not isinstance(cons, list):
            raise ActionSetError("action set 'constraints' must be a list")
        out = cls(
            [ActionElement.from_dict(f) for f in feats],
            name=str(d.get("name") or ""),
            version=str(d.get("version") if d.get("version") is not None else "1"),
            description=str(d.get("description") or ""),
        )
        for c in cons:
            out.add_constraint(constraint_from_dict(c))
        return out

    def canonical_json(self) -> str:
        """Compact, key-sorted JSON of :meth:`to_dict`; what :attr:`sha256` hashes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), allow_nan=False)

    @property
    def sha256(self) -> str:
        """Content hash of the action set, for provenance of every score and recourse."""
        return sha256_bytes(self.canonical_json().encode())

    def to_json(self, path: str | Path) -> Path:
        """Write the action set as indented JSON to ``path`` and return the path."""
        self.check()
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> ActionSet:
        """Read an action set file.

        Raises
        ------
        ActionSetError
            If the file is not valid JSON or any entry is malformed.
        """
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ActionSetError(f"action set file {str(path)!r} is not valid JSON: {exc}") from exc
        return cls.from_dict(d)
