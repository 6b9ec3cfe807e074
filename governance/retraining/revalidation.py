"""Issued recourse re-validated under another model version: is each promised point approved?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from governance.registry.model import DecisionModel


@dataclass(frozen=True)
class Revalidation:
    """Issued recourse checked under another model version.

    Attributes
    ----------
    score : ndarray of shape (n,)
        P(favourable) of each recourse point under the new version.
    valid : ndarray of bool, shape (n,)
        The point is still approved.
    """

    score: np.ndarray
    valid: np.ndarray


def revalidate(
    model: DecisionModel, X_after: np.ndarray, batch_rows: int = 500_000
) -> Revalidation:
    """Score recourse points under ``model`` in large batches; valid where approved.

    Parameters
    ----------
    model : DecisionModel
        The new version.
    X_after : ndarray of shape (n, n_features)
        Recourse points in the model's code-matrix layout.
    """
    X_after = np.asarray(X_after, dtype=float)
    scores = np.empty(len(X_after))
    for start in range(0, len(X_after), batch_rows):
        scores[start : start + batch_rows] = model.score(X_after[start : start + batch_rows])
    return Revalidation(scores, scores >= model.threshold)


@dataclass
class ValidityTally:
    """What a redeploy check reports about re-validated recourse, as counts that add up over
    slices checked apart: invalidation overall, by feature the recourse changes, by segment and
    by kind; forward validity; validity of kept alternatives; and the (stability at issue,
    validity) pairs behind the calibration table, in slice order.

    Built per slice with :meth:`of`, combined with ``+``; :meth:`summary` gives the figures
    with the rounding the run summary records.
    """

    n: int = 0
    invalid: int = 0
    by_feature: dict[str, list[int]] = field(default_factory=dict)  # feature -> [n, invalid]
    by_segment: dict[str, list[int]] | None = None
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    fv_sum: float = 0.0
    fv_count: int = 0
    alt_n: int = 0
    alt_issued_valid: int = 0
    alt_valid: int = 0
    stability: np.ndarray = field(default_factory=lambda: np.empty(0))
    stability_valid: np.ndarray = field(default_factory=lambda: np.empty(0))

    @classmethod
    def of(
        cls,
        valid: np.ndarray,
        kind: Sequence[str],
        changed: Sequence[str | None],
        *,
        segment: Sequence[Any] | None = None,
        forward_validity: np.ndarray | None = None,
        alternative_valid: Sequence[bool | None] | None = None,
        stability: np.ndarray | None = None,
    ) -> ValidityTally:
        """Counts of one slice of re-validated recourse (rows in recourse_id order)."""
        valid = np.asarray(valid, dtype=bool)
        invalid = ~valid
        n = len(valid)

        def tally(keys: pd.Series, flags: np.ndarray) -> dict[str, list[int]]:
            g = pd.Series(flags).groupby(keys.to_numpy()).agg(["size", "sum"])
            return {str(k): [int(a), int(b)] for k, (a, b) in g.iterrows()}

        pairs = pd.DataFrame(
            {"feature": pd.Series(list(changed), dtype=object).fillna("").str.split(","),
             "invalid": invalid}
        ).explode("feature")
        pairs = pairs[pairs["feature"] != ""]
        out = cls(
            n=n,
            invalid=int(invalid.sum()),
            by_feature=tally(pairs["feature"].astype(str), pairs["invalid"].to_numpy(bool)),
            by_kind=tally(pd.Series(list(kind), dtype=object), invalid),
        )
        if segment is not None:
            out.by_segment = tally(pd.Series(list(segment)).astype(str), invalid)
        if forward_validity is not None:
            fv = np.asarray(forward_validity, dtype=float)
            known = ~np.isnan(fv)
            out.fv_sum, out.fv_count = float(fv[known].sum()), int(known.sum())
        if alternative_valid is not None:
            alt = pd.Series(list(alternative_valid), dtype=object)
            has = alt.notna().to_numpy()
            out.alt_n = int(has.sum())
            out.alt_issued_valid = int(valid[has].sum())
            out.alt_valid = int(alt[has].astype(bool).sum())
        if stability is not None:
            r = np.asarray(stability, dtype=float)
            known = ~np.isnan(r)
            out.stability, out.stability_valid = r[known], valid[known].astype(float)
        return out

    def __add__(self, other: ValidityTally) -> ValidityTally:
        def merged(a: dict | None, b: dict | None) -> dict | None:
            if a is None and b is None:
                return None
            out = {k: list(v) for k, v in (a or {}).items()}
            for k, (m, i) in (b or {}).items():
                cur = out.setdefault(k, [0, 0])
                cur[0] += m
                cur[1] += i
            return out

        return ValidityTally(
            n=self.n + other.n,
            invalid=self.invalid + other.invalid,
            by_feature=merged(self.by_feature, other.by_feature),
            by_segment=merged(self.by_segment, other.by_segment),
            by_kind=merged(self.by_kind, other.by_kind),
            fv_sum=self.fv_sum + other.fv_sum,
            fv_count=self.fv_count + other.fv_count,
            alt_n=self.alt_n + other.alt_n,
            alt_issued_valid=self.alt_issued_valid + other.alt_issued_valid,
            alt_valid=self.alt_valid + other.alt_valid,
            stability=np.concatenate([self.stability, other.stability]),
            stability_valid=np.concatenate([self.stability_valid, other.stability_valid]),
        )

    def summary(self, segment: str | None = None) -> dict[str, Any]:
        """Invalidation overall, by feature (most invalidated first), by segment and kind;
        mean forward validity; and, where alternatives were kept, validity of both."""
        n = self.n
        out: dict[str, Any] = {
            "recourses_checked": n,
            "invalidated": self.invalid,
            "invalidation_rate": round(self.invalid / n, 6) if n else None,
        }
        if not n:
            return out
        features = sorted(self.by_feature)
        by_feature = pd.DataFrame(
            {
                "size": np.array([self.by_feature[f][0] for f in features], dtype=np.int64),
                "sum": np.array([self.by_feature[f][1] for f in features], dtype=np.int64),
            },
            index=features,
        )
        out["invalidation_by_feature"] = {
            f: {"recourses": int(a), "invalidated": int(b), "rate": round(b / a, 6)}
            for f, (a, b) in by_feature.sort_values("sum", ascending=False).iterrows()
        }
        if segment and self.by_segment is not None:
            out["segment"] = segment
            out["invalidation_by_segment"] = {
                k: {"recourses": m, "rate": round(i / m, 6)}
                for k, (m, i) in sorted(self.by_segment.items())
            }
        out["invalidation_by_kind"] = {
            k: round(i / m, 6) for k, (m, i) in sorted(self.by_kind.items())
        }
        if self.fv_count:
            out["mean_forward_validity"] = round(self.fv_sum / self.fv_count, 6)
        if self.alt_n:
            out["alternative_validity"] = {
                "issued": round(self.alt_issued_valid / self.alt_n, 6),
                "alternative": round(self.alt_valid / self.alt_n, 6),
                "alternative_kind": "minimal",
            }
        return out
