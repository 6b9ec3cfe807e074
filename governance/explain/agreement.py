"""Agreement of two explanations of the same decisions, and drift of global attribution.

The row-wise metrics are OpenXAI's (Agarwal et al., NeurIPS 2022; ``openxai/metrics.py``,
functions ``_single_k_gt_faith``, ``rankcorr`` and ``pairwise_comp``) with one generalisation:
OpenXAI compares every explanation with a single ground-truth vector, here each row of ``a`` is
compared with the same row of ``b`` (two explainers, two model versions, or attributions against
responsiveness scores of the same decision). Following OpenXAI's code:

- the top k of a vector are its k largest entries by absolute value (``argsort(-|e|)``; ties
  are broken by feature position here, OpenXAI's unstable sort leaves them unspecified);
- ranks are dense ranks of ``-|e|`` (``scipy.stats.rankdata(method="dense")``);
- feature agreement (FA) = |topk(a) ∩ topk(b)| / k; sign agreement (SA) counts a shared
  feature only when its sign is also the same;
- rank agreement (RA) = share of the k positions holding the same feature *with the same
  dense rank*; signed rank agreement (SRA) also requires the same sign;
- rank correlation (RC) = Pearson correlation of the two dense-rank vectors (the code's form;
  the paper calls it Spearman's); NaN when either vector's ranks are constant;
- pairwise rank agreement (PRA) = share of the C(d, 2) feature pairs whose "ranked strictly
  above" relation is the same in both.

OpenXAI's benchmark averages FA..SRA over k = 1..ceil(0.25 d) (``AUC=True``); we report them
at the k given (4, the number of reasons disclosed).

Global drift is SageMaker Clarify's feature-attribution drift: the nDCG of the live ranking of
mean |attribution| scored with the baseline's mean |attribution| as gains; Clarify flags a
score below 0.9.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

NDCG_FLAG = 0.9


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape != b.shape:
        raise ValueError(f"explanations of shape {a.shape} and {b.shape} cannot be compared")
    return a, b


def top_k(e: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k largest |e| per row, largest first (ties: lower position first).

    Examples
    --------
    >>> top_k(np.array([[0.1, -0.5, 0.3]]), 2).tolist()
    [[1, 2]]
    """
    e = np.atleast_2d(np.asarray(e, dtype=float))
    return np.argsort(-np.abs(e), axis=1, kind="stable")[:, :k]


def dense_ranks(e: np.ndarray) -> np.ndarray:
    """Dense ranks of ``-|e|`` per row (1 = largest magnitude; ties share a rank)."""
    e = np.atleast_2d(np.asarray(e, dtype=float))
    return rankdata(-np.abs(e), method="dense", axis=1).astype(np.int64)


def topk_agreement(a: np.ndarray, b: np.ndarray, k: int, metric: str) -> np.ndarray:
    """OpenXAI's FA, RA, SA or SRA of each row of ``a`` against the same row of ``b``.

    Parameters
    ----------
    a, b : ndarray of shape (n, d)
        Attributions (or any importance vectors) of the same n decisions.
    k : int
        Top-k size, at most d.
    metric : {"overlap", "rank", "sign", "ranksign"}
        FA, RA, SA and SRA in OpenXAI's naming.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> a = np.array([[0.5, -0.4, 0.1, 0.0]])
    >>> b = np.array([[-0.4, 0.5, 0.0, 0.2]])
    >>> [float(topk_agreement(a, b, 2, m)[0]) for m in ("overlap", "rank", "sign", "ranksign")]
    [1.0, 0.0, 0.0, 0.0]
    """
    if metric not in ("overlap", "rank", "sign", "ranksign"):
        raise ValueError(f"unknown agreement metric {metric!r}")
    a, b = _pair(a, b)
    n, d = a.shape
    if not 1 <= k <= d:
        raise ValueError(f"k = {k} must lie in [1, {d}]")
    ia, ib = top_k(a, k), top_k(b, k)
    # Each top-k slot as a tuple (feature, [rank], [sign]), exactly the strings OpenXAI builds.
    parts_a, parts_b = [ia], [ib]
    if "rank" in metric:
        parts_a.append(np.take_along_axis(dense_ranks(a), ia, axis=1))
        parts_b.append(np.take_along_axis(dense_ranks(b), ib, axis=1))
    if "sign" in metric:
        parts_a.append(np.take_along_axis(np.sign(a).astype(np.int64), ia, axis=1))
        parts_b.append(np.take_along_axis(np.sign(b).astype(np.int64), ib, axis=1))
    sa, sb = np.stack(parts_a, axis=-1), np.stack(parts_b, axis=-1)  # (n, k, parts)
    if metric in ("overlap", "sign"):
        # Set intersection of the k tuples: a tuple matches if it occurs anywhere in the other.
        same = (sa[:, :, None, :] == sb[:, None, :, :]).all(axis=-1)  # (n, k, k)
        return same.any(axis=2).sum(axis=1) / k
    return (sa == sb).all(axis=-1).sum(axis=1) / k


def rank_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """OpenXAI's RC per row: Pearson correlation of the dense ranks of -|a| and -|b|.

    NaN where either row's ranks are all equal (the correlation is undefined).

    Examples
    --------
    >>> rank_correlation(np.array([[3.0, 2.0, 1.0]]), np.array([[1.0, 2.0, 3.0]])).tolist()
    [-1.0]
    """
    a, b = _pair(a, b)
    ra, rb = dense_ranks(a).astype(float), dense_ranks(b).astype(float)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    num = (ra * rb).sum(axis=1)
    den = np.sqrt((ra**2).sum(axis=1) * (rb**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def pairwise_rank_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """OpenXAI's PRA per row: share of feature pairs (i < j) ordered alike by a and b.

    "Ordered" is OpenXAI's relation ``rank_i < rank_j`` on dense ranks of -|e|; a pair tied in
    one vector and tied in the other counts as agreeing.

    Examples
    --------
    >>> pairwise_rank_agreement(np.array([[3.0, 2.0, 1.0]]), np.array([[3.0, 1.0, 2.0]]))
    array([0.66666667])
    """
    a, b = _pair(a, b)
    d = a.shape[1]
    if d < 2:
        return np.full(a.shape[0], np.nan)
    ra, rb = dense_ranks(a), dense_ranks(b)
    i, j = np.triu_indices(d, k=1)
    return ((ra[:, i] < ra[:, j]) == (rb[:, i] < rb[:, j])).mean(axis=1)


def agreement(a: np.ndarray, b: np.ndarray, k: int = 4) -> dict[str, np.ndarray]:
    """All six of OpenXAI's agreement metrics per row, at ``k`` (clipped to the width).

    Returns
    -------
    dict
        ``feature_agreement``, ``rank_agreement``, ``sign_agreement``,
        ``signed_rank_agreement``, ``rank_correlation``, ``pairwise_rank_agreement``; arrays
        of shape (n,).
    """
    a, b = _pair(a, b)
    k = min(k, a.shape[1])
    return {
        "feature_agreement": topk_agreement(a, b, k, "overlap"),
        "rank_agreement": topk_agreement(a, b, k, "rank"),
        "sign_agreement": topk_agreement(a, b, k, "sign"),
        "signed_rank_agreement": topk_agreement(a, b, k, "ranksign"),
        "rank_correlation": rank_correlation(a, b),
        "pairwise_rank_agreement": pairwise_rank_agreement(a, b),
    }


def ndcg_drift(baseline: np.ndarray, live: np.ndarray) -> float:
    """Clarify's feature-attribution drift score between two global attribution vectors.

    ``nDCG = DCG / iDCG`` with ``DCG = sum_i a(f'_i) / log2(i + 1)`` over the features ``f'``
    ranked by ``live`` (largest first) and ``iDCG`` the same sum over the features ranked by
    ``baseline``; ``a`` is the baseline's value. Inputs are global importances such as mean
    |SHAP| per feature (ties in ``live`` keep feature order).

    Examples
    --------
    >>> ndcg_drift(np.array([3.0, 2.0, 1.0]), np.array([0.3, 0.2, 0.1]))
    1.0
    >>> round(ndcg_drift(np.array([3.0, 2.0, 1.0]), np.array([0.1, 0.2, 0.3])), 4)
    0.79
    """
    baseline = np.abs(np.asarray(baseline, dtype=float))
    live = np.abs(np.asarray(live, dtype=float))
    if baseline.shape != live.shape or baseline.ndim != 1:
        raise ValueError("baseline and live must be vectors of the same length")
    discount = 1.0 / np.log2(np.arange(2, len(baseline) + 2))
    ideal = float((np.sort(baseline)[::-1] * discount).sum())
    if ideal == 0:
        return float("nan")
    order = np.argsort(-live, kind="stable")
    return float((baseline[order] * discount).sum() / ideal)
