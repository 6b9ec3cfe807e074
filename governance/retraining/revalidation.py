"""Issued recourse re-validated under another model version: is each promised point approved?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
