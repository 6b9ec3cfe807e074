"""What changes for an applicant when one model version replaces another.

Reasons that change and verdicts that move between "recourse" and "fixed", for the redeploy and
deletion checks. Agreement of top-k reason lists follows OpenXAI (Agarwal et al., NeurIPS 2022):
feature agreement is ``|topk(a) ∩ topk(b)| / k`` and rank agreement the share of the k positions
holding the same feature.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def reason_agreement(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Feature and rank agreement of two top-k reason lists per row.

    Parameters
    ----------
    old, new : ndarray of shape (n, k), int
        Feature positions, -1 where fewer than k reasons were given.

    Returns
    -------
    feature_agreement, rank_agreement : ndarray of shape (n,)
        Over the k positions; two empty lists agree fully.

    Examples
    --------
    >>> fa, ra = reason_agreement(np.array([[3, 1, 2, -1]]), np.array([[1, 3, 2, -1]]))
    >>> fa.tolist(), ra.tolist()
    ([1.0], [0.5])
    """
    old = np.asarray(old)
    new = np.asarray(new)
    k = old.shape[1]
    shared = np.array(
        [
            len(set(a[a >= 0].tolist()) & set(b[b >= 0].tolist()))
            for a, b in zip(old, new, strict=True)
        ]
    )
    # Empty slots agree with empty slots: two lists of three reasons each can agree fully.
    empty_both = np.minimum((old < 0).sum(axis=1), (new < 0).sum(axis=1))
    return (shared + empty_both) / k, (old == new).sum(axis=1) / k


def verdict_changes(old_status: np.ndarray, new_status: np.ndarray) -> pd.DataFrame:
    """Who became fixed and who gained recourse between two verification runs."""
    old_status = np.asarray(old_status, dtype=object)
    new_status = np.asarray(new_status, dtype=object)
    return pd.DataFrame(
        {
            "became_fixed": (new_status == "fixed") & (old_status != "fixed"),
            "gained_recourse": (new_status == "recourse") & (old_status == "fixed"),
            "now_approved": new_status == "approved",
        }
    )


def positions(features: list[str], ranked: pd.DataFrame, ids: np.ndarray, k: int) -> np.ndarray:
    """Reason lists as an (n, k) array of feature positions from rows (decision_id, rank, feature).

    Rows of decisions absent from ``ranked`` (no reasons given) are all -1.
    """
    out = np.full((len(ids), k), -1, dtype=np.int64)
    if ranked.empty:
        return out
    where = {d: i for i, d in enumerate(ids)}
    col = {f: j for j, f in enumerate(features)}
    for d, rank, feature in ranked[["decision_id", "rank", "feature"]].itertuples(index=False):
        if d in where and 1 <= rank <= k and feature in col:
            out[where[d], rank - 1] = col[feature]
    return out


def reason_changes(old: list[str], new: list[str]) -> dict[str, list]:
    """Which reasons appeared, disappeared or changed rank between two ranked reason lists.

    Examples
    --------
    >>> reason_changes(["debt", "income", "age"], ["income", "debt", "savings"])
    {'appeared': [('savings', 3)], 'disappeared': [('age', 3)], 'moved': [('debt', 1, 2), ('income', 2, 1)]}
    """  # noqa: E501
    old_rank = {f: i + 1 for i, f in enumerate(old)}
    new_rank = {f: i + 1 for i, f in enumerate(new)}
    return {
        "appeared": [(f, r) for f, r in new_rank.items() if f not in old_rank],
        "disappeared": [(f, r) for f, r in old_rank.items() if f not in new_rank],
        "moved": [
            (f, r, new_rank[f]) for f, r in old_rank.items() if f in new_rank and new_rank[f] != r
        ],
    }


def timeline_pairs(states: list[dict]) -> list[tuple[dict, dict, str]]:
    """The pairs a reviewer compares in a subject's explanation history.

    ``states`` are explanations in order, each with ``decision_id`` and ``own_version``
    (False: a later version re-explained the decision). Pairs: each decision under its own
    version against the previous decision under its own version ("next decision"), and each
    decision under its own version against every later version that re-explained it
    ("re-explained").
    """
    pairs = []
    previous_own = None
    own_by_decision = {s["decision_id"]: s for s in states if s["own_version"]}
    for s in states:
        if s["own_version"]:
            if previous_own is not None:
                pairs.append((previous_own, s, "next decision"))
            previous_own = s
        elif s["decision_id"] in own_by_decision:
            pairs.append((own_by_decision[s["decision_id"]], s, "re-explained"))
    return pairs
