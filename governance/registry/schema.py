"""Feature schema of a model version: each feature's name, dtype and allowed range or categories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from governance.exceptions import ManifestError

Dtype = Literal["float", "int", "bool", "category"]
_DTYPES = ("float", "int", "bool", "category")


@dataclass(frozen=True)
class FeatureSpec:
    """One model input: its dtype and what values it may take.

    Parameters
    ----------
    name : str
        Column name in the decision log and in the model's input frame.
    dtype : {"float", "int", "bool", "category"}
        Logical type. ``bool`` features hold 0/1.
    min, max : float or None
        Closed bounds for numeric features; None means unbounded on that side.
    categories : tuple of str or None
        Allowed values of a ``category`` feature.
    description : str
        One line for reviewers, shown in reports.
    """

    name: str
    dtype: Dtype
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in _DTYPES:
            raise ManifestError(
                f"feature {self.name!r} has dtype {self.dtype!r}; "
                f"expected one of {', '.join(_DTYPES)}"
            )
        if self.dtype == "category" and not self.categories:
            raise ManifestError(f"category feature {self.name!r} needs a non-empty 'categories'")
        if self.categories is not None:
            object.__setattr__(self, "categories", tuple(str(c) for c in self.categories))
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ManifestError(f"feature {self.name!r}: min {self.min} > max {self.max}")

    @property
    def is_numeric(self) -> bool:
        return self.dtype != "category"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if d["categories"] is not None:
            d["categories"] = list(d["categories"])
        return {k: v for k, v in d.items() if v is not None and v != ""}


@dataclass(frozen=True)
class FeatureSchema:
    """Ordered collection of :class:`FeatureSpec`, the contract between a model and its logs."""

    features: tuple[FeatureSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ManifestError(f"duplicate feature names in schema: {', '.join(dup)}")

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(f"feature {name!r} not in schema; known: {', '.join(self.names)}")

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def numeric(self) -> list[str]:
        return [f.name for f in self.features if f.is_numeric]

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if not f.is_numeric]

    @property
    def layout_sha256(self) -> str:
        """Hash of what a code matrix's columns mean (names, dtypes, category order).

        Two schemas with the same layout read each other's code matrices unchanged.
        """
        import hashlib
        import json

        layout = [(f.name, f.dtype, list(f.categories or ())) for f in self.features]
        return hashlib.sha256(json.dumps(layout).encode()).hexdigest()

    def to_list(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self.features]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> FeatureSchema:
        try:
            return cls(tuple(FeatureSpec(**dict(item)) for item in items))
        except TypeError as exc:
            raise ManifestError(f"malformed feature schema: {exc}") from exc

    @classmethod
    def from_frame(
        cls,
        X: pd.DataFrame,
        bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
        descriptions: Mapping[str, str] | None = None,
    ) -> FeatureSchema:
        """Infer a schema from data.

        Numeric ranges default to the observed min and max; pass ``bounds`` for domain limits
        (a new applicant may lie outside the training range and still be valid).
        """
        bounds = dict(bounds or {})
        descriptions = dict(descriptions or {})
        specs = []
        for name in X.columns:
            col = X[name]
            desc = descriptions.get(name, "")
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats = tuple(str(c) for c in col.cat.categories)
                specs.append(FeatureSpec(name, "category", categories=cats, description=desc))
                continue
            if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                cats = tuple(sorted(str(c) for c in col.dropna().unique()))
                specs.append(FeatureSpec(name, "category", categories=cats, description=desc))
                continue
            values = col.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if pd.api.types.is_bool_dtype(col) or set(np.unique(finite)) <= {0.0, 1.0}:
                dtype: Dtype = "bool"
                lo, hi = 0.0, 1.0
            else:
                dtype = "int" if np.all(finite == np.round(finite)) else "float"
                lo = float(finite.min()) if finite.size else None
                hi = float(finite.max()) if finite.size else None
            if name in bounds:
                lo, hi = bounds[name]
            specs.append(FeatureSpec(name, dtype, lo, hi, description=desc))
        return cls(tuple(specs))
