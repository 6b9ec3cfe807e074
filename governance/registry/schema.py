"""Feature schema of a model version: each feature's name, dtype and allowed range or categories."""

from __future__ import annotations

import dataclasses
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
        Hard bounds the user declared for a numeric feature: a logged value outside them is
        impossible and its row goes to quarantine. None means unbounded on that side.
    categories : tuple of str or None
        Allowed values of a ``category`` feature.
    description : str
        One line for reviewers, shown in reports.
    observed_min, observed_max : float or None
        Range seen in the training data or reference sample. A logged value outside it (and
        inside the hard bounds) is processed and flagged as out of distribution: the model was
        never fitted there, but the applicant is legitimate and still gets reasons.
    review : str
        Why this entry awaits the user's review (say, a range proposed from a sample); empty
        once reviewed or when the user wrote it.
    """

    name: str
    dtype: Dtype
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""
    observed_min: float | None = None
    observed_max: float | None = None
    review: str = ""

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
        lo, hi = self.observed_min, self.observed_max
        if lo is not None and hi is not None and lo > hi:
            raise ManifestError(f"feature {self.name!r}: observed_min {lo} > observed_max {hi}")

    @property
    def is_numeric(self) -> bool:
        return self.dtype != "category"

    @property
    def value_range(self) -> tuple[float | None, float | None]:
        """Where the feature's values lie: each side's hard bound, else its observed end."""
        lo = self.min if self.min is not None else self.observed_min
        hi = self.max if self.max is not None else self.observed_max
        return lo, hi

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

    def with_overrides(self, items: Iterable[Mapping[str, Any]]) -> FeatureSchema:
        """A copy in which each given entry replaces the named feature's fields it sets.

        The user's word on a feature (dtype, hard bounds, observed range, categories,
        description) wins over what was inferred, and clears its ``review`` mark.

        Raises
        ------
        ManifestError
            If an entry names no feature of the schema or sets an unknown field.
        """
        allowed = {f.name for f in dataclasses.fields(FeatureSpec)}
        by_name = {f.name: f for f in self.features}
        for item in items:
            if not isinstance(item, Mapping) or "name" not in item:
                raise ManifestError(f"a schema entry must be an object with a 'name'; got {item!r}")
            name = str(item["name"])
            if name not in by_name:
                raise ManifestError(
                    f"schema entry {name!r} names no feature of the model; known: "
                    f"{', '.join(self.names)}"
                )
            extra = sorted(set(item) - allowed)
            if extra:
                raise ManifestError(
                    f"schema entry {name!r} has unknown field(s) {', '.join(extra)}; "
                    f"expected {', '.join(sorted(allowed))}"
                )
            fields = {**dict(item), "review": item.get("review", "")}
            try:
                by_name[name] = dataclasses.replace(by_name[name], **fields)
            except TypeError as exc:
                raise ManifestError(f"malformed schema entry {name!r}: {exc}") from exc
        return FeatureSchema(tuple(by_name[n] for n in self.names))

    @classmethod
    def from_frame(
        cls,
        X: pd.DataFrame,
        bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
        descriptions: Mapping[str, str] | None = None,
        *,
        review: str = "",
    ) -> FeatureSchema:
        """Infer a schema from data.

        Numeric features record the observed min and max as their observed range, which flags
        later values outside it as out of distribution; only ``bounds`` (domain limits the
        caller declares) become hard bounds that quarantine a value. Bool features are bounded
        by {0, 1}.

        Parameters
        ----------
        X : DataFrame
            One column per feature; pandas categoricals keep their category order, other text
            columns are sorted.
        bounds : mapping of str to (min, max), optional
            Declared hard bounds per feature.
        descriptions : mapping of str to str, optional
        review : str, default=""
            Mark every inferred numeric range and category list for review with this reason.
        """
        bounds = dict(bounds or {})
        descriptions = dict(descriptions or {})
        specs = []
        for name in X.columns:
            col = X[name]
            desc = descriptions.get(name, "")
            if isinstance(col.dtype, pd.CategoricalDtype):
                cats = tuple(str(c) for c in col.cat.categories)
                specs.append(
                    FeatureSpec(name, "category", categories=cats, description=desc, review=review)
                )
                continue
            if not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
                cats = tuple(sorted(str(c) for c in col.dropna().unique()))
                specs.append(
                    FeatureSpec(name, "category", categories=cats, description=desc, review=review)
                )
                continue
            values = col.to_numpy(dtype=float, na_value=np.nan)
            finite = values[np.isfinite(values)]
            if pd.api.types.is_bool_dtype(col) or set(np.unique(finite)) <= {0.0, 1.0}:
                specs.append(FeatureSpec(name, "bool", 0.0, 1.0, description=desc))
                continue
            dtype: Dtype = "int" if np.all(finite == np.round(finite)) else "float"
            lo, hi = bounds.get(name, (None, None))
            specs.append(
                FeatureSpec(
                    name,
                    dtype,
                    lo,
                    hi,
                    description=desc,
                    observed_min=float(finite.min()) if finite.size else None,
                    observed_max=float(finite.max()) if finite.size else None,
                    review=review if name not in bounds else "",
                )
            )
        return cls(tuple(specs))
