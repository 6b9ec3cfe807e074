"""Stability of explanations: OpenXAI's relative input and output stability (RIS, ROS).

As OpenXAI's code computes them (``openxai/metrics.py``, ``_single_idx_stability``;
``experiment_utils.compute_Lp_norm_diff``), which differs from the paper's element-wise form:

1. draw 1,000 perturbations of every feature of x (OpenXAI's normal perturbation, see
   :mod:`governance.explain.perturbation`);
2. keep the first (up to) 100 that the model decides like x ("same class"; we use the model's
   own approval threshold, OpenXAI the argmax of its two outputs);
3. explain each kept neighbour x' and take, over those neighbours, the maximum of ::

       (||e_x - e_x'||_2 / ||e_x||_2) / (||r_x - r_x'||_2 / ||r_x||_2)

   with whole-vector L2 norms, where r is the input (RIS) or the model's logit (ROS);
4. skip a neighbour whose ratio is undefined (zero or NaN denominator, ``||e_x|| = 0``); no
   epsilon floor. A decision with no defined ratio gets NaN.

Lower is better. Our choices, stated: RIS reads inputs in units of each feature's training std
(not centred), binary features as 0/1 and category features as one-hot indicators (see
:meth:`FeatureSpace.representation`); ROS reads the log-odds of the favourable class, one
number (OpenXAI's models have two logits, and it takes the norm of that pair).

OpenXAI's neighbourhood has std 1e-5, which almost never crosses a split of a tree ensemble:
every neighbour would have the same explanation and the same output, so ROS would be undefined
and RIS trivially 0. For tree models the neighbourhood is therefore ``TREE_STD`` = 0.1 training
std per continuous feature (and flip probability sqrt(2/pi) * 0.1), the scale of the
faithfulness noise; other models keep OpenXAI's 1e-5. The share of neighbours skipped is
returned so a reviewer sees how many ratios the maximum was taken over.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from governance.explain.perturbation import (
    FeatureSpace,
    flip_probability,
    normal_perturbations,
    row_generators,
)

OPENXAI_STD = 1e-5
TREE_STD = 0.1


def neighbourhood_std(tree_model: bool) -> float:
    """Noise std (units of training std) of the stability neighbourhood: ``TREE_STD`` for a
    tree ensemble, whatever explains it, else OpenXAI's 1e-5."""
    return TREE_STD if tree_model else OPENXAI_STD


@dataclass(frozen=True)
class StabilitySettings:
    """Settings of RIS and ROS (OpenXAI's defaults except ``std`` for trees).

    Attributes
    ----------
    n_draws : int, default=1000
    max_neighbours : int, default=100
        Same-class neighbours explained per decision, the first in draw order.
    std : float, default=1e-5
        Neighbourhood noise in units of training std; see :func:`neighbourhood_std`.
    p_norm : float, default=2
    seed : int, default=0
    """

    n_draws: int = 1000
    max_neighbours: int = 100
    std: float = OPENXAI_STD
    p_norm: float = 2
    seed: int = 0

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "flip_probability": flip_probability(self.std),
            "std_units": "training std per continuous feature",
            "form": "OpenXAI code: ratio of relative L2 changes of whole vectors, max over "
            "same-class neighbours, undefined ratios skipped",
            "ris_input": "continuous / std (not centred), binary 0/1, category one-hot",
            "ros_output": "log-odds of the favourable class",
        }


def relative_change(a: np.ndarray, b: np.ndarray, p: float = 2) -> np.ndarray:
    """OpenXAI's ``compute_Lp_norm_diff`` row-wise: ||a - b||_p / ||a||_p (NaN if ||a|| = 0).

    Examples
    --------
    >>> relative_change(np.array([[3.0, 4.0]]), np.array([[3.0, 3.0]])).tolist()
    [0.2]
    """
    a = np.atleast_2d(np.asarray(a, dtype=float))
    b = np.atleast_2d(np.asarray(b, dtype=float))
    num = np.linalg.norm(a - b, ord=p, axis=1)
    den = np.linalg.norm(a, ord=p, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den == 0, np.nan, num / np.where(den == 0, 1.0, den))


def stability_ratios(
    e: np.ndarray, e_prime: np.ndarray, r: np.ndarray, r_prime: np.ndarray, p: float = 2
) -> tuple[np.ndarray, np.ndarray]:
    """Per neighbour: the ratio of relative explanation change to relative change of r, and
    whether it is defined (OpenXAI skips NaN ratios and a zero denominator).

    Parameters
    ----------
    e, e_prime : ndarray of shape (m, d)
        Explanation of the decision (repeated per neighbour) and of the neighbour.
    r, r_prime : ndarray of shape (m, q)
        Representation of the decision and of the neighbour (inputs or logits).

    Examples
    --------
    >>> ratio, ok = stability_ratios(
    ...     np.array([[1.0, 0.0]]), np.array([[0.9, 0.0]]),
    ...     np.array([[2.0]]), np.array([[1.9]]))
    >>> round(float(ratio[0]), 6), bool(ok[0])
    (2.0, True)
    """
    exp_diff = relative_change(e, e_prime, p)
    rep_diff = relative_change(r, r_prime, p)
    ok = np.isfinite(exp_diff) & np.isfinite(rep_diff) & (rep_diff != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(ok, exp_diff / np.where(ok, rep_diff, 1.0), np.nan)
    return ratio, ok


@dataclass(frozen=True)
class Stability:
    """RIS and ROS per decision, with how many neighbours they rest on.

    Attributes
    ----------
    ris, ros : ndarray of shape (n,)
        Maximum ratio over the defined neighbours; NaN when none is defined.
    n_same_class : ndarray of shape (n,), int
        Neighbours kept and explained (at most ``max_neighbours``).
    ris_skipped, ros_skipped : ndarray of shape (n,), int
        Of those, how many had an undefined ratio.
    """

    ris: np.ndarray
    ros: np.ndarray
    n_same_class: np.ndarray
    ris_skipped: np.ndarray
    ros_skipped: np.ndarray


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 1e-15, 1 - 1e-15)
    return np.log(p) - np.log1p(-p)


def _max_by_owner(ratio: np.ndarray, ok: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -np.inf)
    np.maximum.at(out, owner[ok], ratio[ok])
    return np.where(np.isfinite(out), out, np.nan)


def relative_stability(
    score: Callable[[np.ndarray], np.ndarray],
    threshold: float,
    explain: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    E: np.ndarray,
    keys: Sequence[str],
    space: FeatureSpace,
    settings: StabilitySettings | None = None,
) -> Stability:
    """RIS and ROS of each row's explanation.

    Parameters
    ----------
    score : callable
        Probability of the favourable class for a code matrix; called once for all draws.
    threshold : float
        Approval threshold: "same class" means the same decision.
    explain : callable
        Attributions (m, d) for a code matrix of neighbours; called once for all of them.
    X : ndarray of shape (n, d)
        The decisions, as a code matrix.
    E : ndarray of shape (n, d)
        Their explanations (as stored).
    keys : sequence of str
        Decision ids: each row's seed.
    space : FeatureSpace
    settings : StabilitySettings, optional

    Returns
    -------
    Stability
    """
    s = settings or StabilitySettings()
    X = np.atleast_2d(np.asarray(X, dtype=float))
    E = np.atleast_2d(np.asarray(E, dtype=float))
    n, d = X.shape
    if n == 0:
        z = np.empty(0)
        zi = np.empty(0, dtype=np.int64)
        return Stability(z, z, zi, zi, zi)
    draws = normal_perturbations(
        space, X, s.n_draws, s.std, row_generators(keys, s.seed, "stability")
    )
    p = np.asarray(score(np.vstack([X, draws.reshape(n * s.n_draws, d)])), dtype=float)
    p_x, p_draw = p[:n], p[n:].reshape(n, s.n_draws)
    same = (p_draw >= threshold) == (p_x >= threshold)[:, None]
    # The first max_neighbours same-class draws of each row, in draw order.
    kept = same & (np.cumsum(same, axis=1) <= s.max_neighbours)
    owner, pick = np.nonzero(kept)
    n_kept = kept.sum(axis=1)
    if len(owner) == 0:
        nan = np.full(n, np.nan)
        zeros = np.zeros(n, dtype=np.int64)
        return Stability(nan, nan, zeros, zeros, zeros)
    neighbours = draws[owner, pick]
    E_n = np.asarray(explain(neighbours), dtype=float)
    ris, ris_ok = stability_ratios(
        E[owner],
        E_n,
        space.representation(X)[owner],
        space.representation(neighbours),
        s.p_norm,
    )
    l_x, l_n = _logit(p_x)[owner, None], _logit(p_draw[owner, pick])[:, None]
    ros, ros_ok = stability_ratios(E[owner], E_n, l_x, l_n, s.p_norm)
    skipped_ris = n_kept - np.bincount(owner[ris_ok], minlength=n)
    skipped_ros = n_kept - np.bincount(owner[ros_ok], minlength=n)
    return Stability(
        _max_by_owner(ris, ris_ok, owner, n),
        _max_by_owner(ros, ros_ok, owner, n),
        n_kept.astype(np.int64),
        skipped_ris.astype(np.int64),
        skipped_ros.astype(np.int64),
    )
