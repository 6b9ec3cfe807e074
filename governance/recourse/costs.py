"""Costs of actions for minimal-cost recourse, fitted on reference data and saved as JSON.

Two costs, both additive over features (``cost(x, x') = sum_j cost_j(x_j, x'_j)``):

- :class:`PercentileShiftCost` (Ustun, Spangher and Liu 2019, "Actionable Recourse in Linear
  Classification"): ``cost_j = |Q_j(x'_j) - Q_j(x_j)|`` with ``Q_j`` the empirical CDF of
  feature ``j`` in the reference data, so moving past many people costs more than moving
  through an empty range. The paper's total is the sum (or the max) of these shifts; we use the
  sum, which keeps costs additive across the parts of the action set.
- :class:`MADL1Cost`: ``cost_j = |x'_j - x_j| / MAD_j`` with ``MAD_j`` the median absolute
  deviation of the reference data (Wachter et al. 2017). A zero MAD (say, a mostly-zero count)
  falls back to the standard deviation, then to 1.

Both add ``change_penalty`` per changed feature (default 1e-3 for the percentile shift, 0 for
MAD-L1): an empirical CDF is flat outside the data range, and the penalty keeps such moves
from being free and breaks ties toward actions that change fewer features. A change of a
category feature costs the constant ``category_cost`` (0.5 and 1.0 by default), since
categories have no order. The fitted state (the CDF knots, the MADs) is plain JSON, so a run's
costs can be stored beside its results and reproduced.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from governance.exceptions import CostError
from governance.hashing import sha256_bytes
from governance.registry.schema import FeatureSchema

FORMAT = "governance.cost/1"
MAX_KNOTS = 1001
_CHANGED = 1e-12


def _reference_matrix(X: pd.DataFrame | np.ndarray, schema: FeatureSchema) -> np.ndarray:
    """Reference rows as floats in schema order, categories as codes."""
    if isinstance(X, np.ndarray):
        M = np.asarray(X, dtype=float)
        if M.ndim != 2 or M.shape[1] != len(schema):
            raise CostError(f"reference matrix must have {len(schema)} columns; got {M.shape}")
        return M
    if not isinstance(X, pd.DataFrame):
        raise CostError(f"reference data must be a DataFrame or ndarray; got {type(X).__name__}")
    missing = [n for n in schema.names if n not in X.columns]
    if missing:
        raise CostError(f"reference data lacks feature(s) {', '.join(missing)}")
    M = np.empty((len(X), len(schema)))
    for j, spec in enumerate(schema):
        col = X[spec.name]
        if spec.dtype == "category" and not pd.api.types.is_numeric_dtype(col):
            lookup = {c: float(i) for i, c in enumerate(spec.categories or ())}
            M[:, j] = col.astype(str).map(lookup).to_numpy(dtype=float, na_value=np.nan)
        else:
            M[:, j] = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    return M


class Cost(ABC):
    """An additive cost of moving a person from ``x`` to ``x'``.

    Parameters
    ----------
    names : sequence of str
        Features in model-schema order.
    categorical : sequence of str
        Category features among ``names``.
    category_cost : float
        Cost of changing a category feature.
    change_penalty : float
        Added once per changed feature.
    """

    kind: ClassVar[str] = ""

    def __init__(
        self,
        names: Sequence[str],
        categorical: Sequence[str] = (),
        category_cost: float = 1.0,
        change_penalty: float = 0.0,
    ) -> None:
        self.names = tuple(str(n) for n in names)
        self.categorical = tuple(str(n) for n in categorical)
        unknown = [n for n in self.categorical if n not in self.names]
        if unknown:
            raise CostError(f"category feature(s) {', '.join(unknown)} not among the cost's names")
        if not (np.isfinite(category_cost) and category_cost >= 0):
            raise CostError(f"category_cost must be finite and >= 0; got {category_cost!r}")
        if not (np.isfinite(change_penalty) and change_penalty >= 0):
            raise CostError(f"change_penalty must be finite and >= 0; got {change_penalty!r}")
        self.category_cost = float(category_cost)
        self.change_penalty = float(change_penalty)
        self._index = {n: j for j, n in enumerate(self.names)}

    # -- evaluation ---------------------------------------------------------------------------
    def feature_cost(self, name: str, x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
        """Cost of moving feature ``name`` from ``x_from`` to ``x_to`` (broadcast elementwise)."""
        if name not in self._index:
            raise CostError(f"feature {name!r} is not in the cost; known: {', '.join(self.names)}")
        x_from = np.asarray(x_from, dtype=float)
        x_to = np.asarray(x_to, dtype=float)
        changed = np.abs(x_to - x_from) > _CHANGED * np.maximum(1.0, np.abs(x_from))
        if name in self.categorical:
            return np.where(changed, self.category_cost + self.change_penalty, 0.0)
        base = self._numeric_cost(name, x_from, x_to)
        return np.where(changed, base + self.change_penalty, 0.0)

    @abstractmethod
    def _numeric_cost(self, name: str, x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
        """Cost of a numeric feature's move, before the change penalty."""

    def __call__(self, X_from: np.ndarray, X_to: np.ndarray) -> np.ndarray:
        """Total cost per row of moving ``X_from`` to ``X_to`` (both in ``names`` order).

        Parameters
        ----------
        X_from, X_to : ndarray of shape (n_rows, n_features)

        Returns
        -------
        ndarray of shape (n_rows,)
        """
        X_from = np.atleast_2d(np.asarray(X_from, dtype=float))
        X_to = np.atleast_2d(np.asarray(X_to, dtype=float))
        if X_from.shape[1] != len(self.names) or X_to.shape != X_from.shape:
            raise CostError(
                f"cost expects two matrices with {len(self.names)} columns; got "
                f"{X_from.shape} and {X_to.shape}"
            )
        total = np.zeros(len(X_from))
        for j, n in enumerate(self.names):
            total += self.feature_cost(n, X_from[:, j], X_to[:, j])
        return total

    def check_names(self, names: Sequence[str]) -> None:
        """Raise :class:`CostError` unless the cost covers exactly ``names`` in that order."""
        if tuple(names) != self.names:
            raise CostError(
                f"cost was fitted on features {list(self.names)}; the model has {list(names)}"
            )

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (``format`` governance.cost/1)."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "names": list(self.names),
            "categorical": list(self.categorical),
            "category_cost": self.category_cost,
            "change_penalty": self.change_penalty,
            "params": self._params(),
        }

    @abstractmethod
    def _params(self) -> dict[str, Any]:
        """Fitted state as JSON-ready values."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "_sha256":  # any reassignment drops the cached hash
            object.__setattr__(self, "_sha256", None)
        object.__setattr__(self, name, value)

    @property
    def sha256(self) -> str:
        """Content hash of the fitted cost, for provenance (cached until an attribute is
        reassigned; the fitted arrays themselves are not meant to be edited in place)."""
        if getattr(self, "_sha256", None) is None:
            text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
            self._sha256 = sha256_bytes(text.encode())
        return self._sha256

    def to_json(self, path: str | Path) -> Path:
        """Write the fitted cost to ``path`` and return it."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def __repr__(self) -> str:
        return f"{type(self).__name__}(features={len(self.names)})"


class PercentileShiftCost(Cost):
    """Sum over features of the shift in percentile, ``|Q_j(x'_j) - Q_j(x_j)|``.

    ``Q_j`` is the empirical CDF of the reference data, stored at up to ``MAX_KNOTS`` knots
    (every distinct value when there are fewer, so discrete features are exact; quantiles
    otherwise) and interpolated linearly between knots; 0 below the data, 1 above.

    Parameters
    ----------
    knots : dict of str to (values, cdf)
        Per numeric feature, increasing values and the CDF at those values.
    names, categorical, category_cost, change_penalty
        See :class:`Cost`; defaults 0.5 per category change and 1e-3 per changed feature.

    Examples
    --------
    >>> schema = FeatureSchema.from_frame(pd.DataFrame({"income": [10.0, 20.0, 30.0, 40.0]}))
    >>> cost = PercentileShiftCost.fit(pd.DataFrame({"income": [10.0, 20.0, 30.0, 40.0]}), schema)
    >>> float(cost.feature_cost("income", 20.0, 40.0).round(4))
    0.501
    """

    kind = "percentile_shift"

    def __init__(
        self,
        names: Sequence[str],
        knots: Mapping[str, tuple[Sequence[float], Sequence[float]]],
        categorical: Sequence[str] = (),
        category_cost: float = 0.5,
        change_penalty: float = 1e-3,
    ) -> None:
        super().__init__(names, categorical, category_cost, change_penalty)
        self.knots: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for n in self.names:
            if n in self.categorical:
                continue
            if n not in knots:
                raise CostError(f"percentile cost lacks knots for numeric feature {n!r}")
            v, q = (np.asarray(a, dtype=float) for a in knots[n])
            if v.ndim != 1 or v.shape != q.shape or len(v) == 0 or np.any(np.diff(v) <= 0):
                raise CostError(f"knots of {n!r} must be strictly increasing with one CDF each")
            if np.any(np.diff(q) < 0) or q[0] < 0 or q[-1] > 1:
                raise CostError(f"CDF of {n!r} must be non-decreasing within [0, 1]")
            self.knots[n] = (v, q)

    @classmethod
    def fit(
        cls,
        X: pd.DataFrame | np.ndarray,
        schema: FeatureSchema,
        *,
        category_cost: float = 0.5,
        change_penalty: float = 1e-3,
    ) -> PercentileShiftCost:
        """Fit the empirical CDFs on reference data ``X`` (schema columns)."""
        M = _reference_matrix(X, schema)
        knots = {}
        for j, spec in enumerate(schema):
            if spec.dtype == "category":
                continue
            v = np.sort(M[np.isfinite(M[:, j]), j])
            if v.size == 0:
                raise CostError(f"reference data has no finite values for {spec.name!r}")
            uniq = np.unique(v)
            if uniq.size > MAX_KNOTS:
                uniq = np.unique(np.quantile(v, np.linspace(0, 1, MAX_KNOTS)))
            cdf = np.searchsorted(v, uniq, side="right") / v.size
            knots[spec.name] = (uniq, cdf)
        return cls(schema.names, knots, schema.categorical, category_cost, change_penalty)

    def quantile(self, name: str, values: np.ndarray) -> np.ndarray:
        """The empirical CDF ``Q_j`` of feature ``name`` at ``values``."""
        v, q = self.knots[name]
        return np.interp(values, v, q, left=0.0, right=1.0)

    def _numeric_cost(self, name, x_from, x_to):
        return np.abs(self.quantile(name, x_to) - self.quantile(name, x_from))

    def _params(self) -> dict[str, Any]:
        return {n: {"values": v.tolist(), "cdf": q.tolist()} for n, (v, q) in self.knots.items()}

    @classmethod
    def _from_params(cls, d: Mapping[str, Any]) -> PercentileShiftCost:
        params = d["params"]
        knots = {n: (p["values"], p["cdf"]) for n, p in params.items()}
        return cls(
            d["names"], knots, d.get("categorical", ()), d["category_cost"], d["change_penalty"]
        )


class MADL1Cost(Cost):
    """Sum over features of ``|x'_j - x_j| / MAD_j`` (MAD-normalised L1).

    Parameters
    ----------
    scales : dict of str to float
        Per numeric feature, the MAD (or its fallback), > 0.
    names, categorical, category_cost, change_penalty
        See :class:`Cost`; defaults 1.0 per category change and no change penalty.

    Examples
    --------
    >>> df = pd.DataFrame({"income": [10.0, 20.0, 30.0, 40.0, 50.0]})
    >>> cost = MADL1Cost.fit(df, FeatureSchema.from_frame(df))
    >>> float(cost.feature_cost("income", 20.0, 40.0))
    2.0
    """

    kind = "mad_l1"

    def __init__(
        self,
        names: Sequence[str],
        scales: Mapping[str, float],
        categorical: Sequence[str] = (),
        category_cost: float = 1.0,
        change_penalty: float = 0.0,
    ) -> None:
        super().__init__(names, categorical, category_cost, change_penalty)
        self.scales: dict[str, float] = {}
        for n in self.names:
            if n in self.categorical:
                continue
            if n not in scales:
                raise CostError(f"MAD cost lacks a scale for numeric feature {n!r}")
            s = float(scales[n])
            if not (np.isfinite(s) and s > 0):
                raise CostError(f"MAD scale of {n!r} must be finite and > 0; got {s!r}")
            self.scales[n] = s

    @classmethod
    def fit(
        cls,
        X: pd.DataFrame | np.ndarray,
        schema: FeatureSchema,
        *,
        category_cost: float = 1.0,
        change_penalty: float = 0.0,
    ) -> MADL1Cost:
        """Fit per-feature MADs on reference data ``X``; zero MADs fall back to std, then 1."""
        M = _reference_matrix(X, schema)
        scales = {}
        for j, spec in enumerate(schema):
            if spec.dtype == "category":
                continue
            v = M[np.isfinite(M[:, j]), j]
            if v.size == 0:
                raise CostError(f"reference data has no finite values for {spec.name!r}")
            mad = float(np.median(np.abs(v - np.median(v))))
            if mad <= 0:
                mad = float(np.std(v))
            scales[spec.name] = mad if mad > 0 else 1.0
        return cls(schema.names, scales, schema.categorical, category_cost, change_penalty)

    def _numeric_cost(self, name, x_from, x_to):
        return np.abs(x_to - x_from) / self.scales[name]

    def _params(self) -> dict[str, Any]:
        return {"scales": dict(self.scales)}

    @classmethod
    def _from_params(cls, d: Mapping[str, Any]) -> MADL1Cost:
        return cls(
            d["names"],
            d["params"]["scales"],
            d.get("categorical", ()),
            d["category_cost"],
            d["change_penalty"],
        )


_KINDS: dict[str, type[Cost]] = {c.kind: c for c in (PercentileShiftCost, MADL1Cost)}


def cost_unit(kind: str | None, category_cost: float | None = None) -> str:
    """What a cost of ``kind`` is measured in and what 1.0 means, in one sentence.

    Every place that shows a recourse cost says this beside it: a bare number reads as money.
    """
    if kind == PercentileShiftCost.kind:
        cat = 0.5 if category_cost is None else category_cost
        return (
            "percentile-shift units: for each changed feature, the share of the training "
            "population its value moves past, summed (1.0 = one feature moved from the lowest "
            f"value in the training data to the highest; a category change counts {cat:g})"
        )
    if kind == MADL1Cost.kind:
        cat = 1.0 if category_cost is None else category_cost
        return (
            "MAD units: each change divided by the feature's median absolute deviation in the "
            "training data, summed (1.0 = one feature moved by one typical deviation; a "
            f"category change counts {cat:g})"
        )
    return f"units of the {kind or 'unrecorded'} cost"


def cost_from_dict(d: Mapping[str, Any]) -> Cost:
    """Rebuild a fitted cost from :meth:`Cost.to_dict`.

    Raises
    ------
    CostError
        If the format or kind is unknown or a field is missing or malformed.
    """
    if not isinstance(d, Mapping) or d.get("format") != FORMAT:
        got = d.get("format") if isinstance(d, Mapping) else type(d).__name__
        raise CostError(f"cost format is {got!r}; expected {FORMAT!r}")
    kind = d.get("kind")
    if kind not in _KINDS:
        raise CostError(f"unknown cost kind {kind!r}; expected one of {', '.join(_KINDS)}")
    try:
        return _KINDS[kind]._from_params(d)  # type: ignore[attr-defined]
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, CostError):
            raise
        raise CostError(f"malformed {kind} cost: {exc!r}") from exc


def load_cost(path: str | Path) -> Cost:
    """Read a cost written by :meth:`Cost.to_json`."""
    try:
        d = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise CostError(f"cost file {str(path)!r} is not valid JSON: {exc}") from exc
    return cost_from_dict(d)
