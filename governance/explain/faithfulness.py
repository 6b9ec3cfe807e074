"""Faithfulness of the reasons disclosed: OpenXAI's prediction gaps PGI and PGU, per decision.

Definitions, as OpenXAI's code computes them (``openxai/metrics.py``,
``_single_idx_pred_faith``)::

    PGI(x) = mean_t |f(x'_t) - f(x)|,  x'_t perturbs only the features explained as important
    PGU(x) = the same with only the *other* features perturbed

with ``f`` the predicted probability (OpenXAI reads class 0's; for two classes the gap is the
same), 100 perturbations and OpenXAI's normal perturbation (see
:mod:`governance.explain.perturbation`). Higher PGI and lower PGU mean the explanation points at
what the model's output depends on.

Where ours differs, stated:

- the "important" features are the reasons disclosed, the top four pushing *towards denial*
  (fewer when fewer features push that way); OpenXAI takes the top k by |attribution|, and its
  benchmark averages over k = 1..ceil(0.25 d) (``AUC=True``), we report one k;
- noise is scaled by each feature's training std and category groups move as a group (see
  :mod:`governance.explain.perturbation`);
- each decision is seeded by its id (OpenXAI seeds with its row index), and PGI, PGU and the
  random control share the same draws, as OpenXAI's share theirs by reusing the seed;
- a seeded control: the PGI of as many features drawn at random. A disclosed set whose PGI is
  not above it is flagged (``reasons_not_above_random``);
- besides OpenXAI's perturbation, the same gaps under the explainer's own neighbourhood
  (replacement from its background sample), as Han et al. (NeurIPS 2022) recommend.

All perturbed points of a batch go to the model in one call (split only above
``max_batch_rows``, to bound memory).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from governance.explain.perturbation import (
    FeatureSpace,
    apply_mask,
    background_perturbations,
    flip_probability,
    normal_perturbations,
    row_generators,
)

NORMAL, BACKGROUND = "openxai_normal", "background_replacement"


@dataclass(frozen=True)
class FaithfulnessSettings:
    """Settings of the prediction-gap metrics (OpenXAI's defaults where OpenXAI has one).

    Attributes
    ----------
    n_samples : int, default=100
        Perturbations per decision and metric (OpenXAI: 100).
    std : float, default=0.1
        Normal noise in units of each feature's training std (OpenXAI: 0.1 on min-max-scaled
        inputs); binary and category features move with probability sqrt(2/pi) * std.
    seed : int, default=0
    random_control : bool, default=True
        Also compute the PGI of as many randomly drawn features.
    background : bool, default=True
        Also compute PGI and PGU under background replacement.
    max_batch_rows : int, default=1_000_000
        Largest model call; more perturbed points are split into several calls.
    """

    n_samples: int = 100
    std: float = 0.1
    seed: int = 0
    random_control: bool = True
    background: bool = True
    max_batch_rows: int = 1_000_000

    @property
    def flip_probability(self) -> float:
        return flip_probability(self.std)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "flip_probability": self.flip_probability,
            "output": "probability of the favourable class",
            "important_features": "the disclosed reasons: top 4 towards denial "
            "(OpenXAI: top k by |attribution|)",
            "category_features": "perturbed as a group (OpenXAI's one-hot-aware variant)",
            "noise_scale": "training std per feature (OpenXAI: min-max-scaled inputs)",
            "seeding": "per decision id, shared by PGI, PGU and the random control",
        }


def prediction_gap(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    perturbed: np.ndarray,
    mask: np.ndarray,
) -> np.ndarray:
    """OpenXAI's prediction gap: mean over samples of |f(x') - f(x)|, x' perturbed on ``mask``.

    Parameters
    ----------
    f : callable
        Model output for a matrix of rows, shape (m,).
    X : ndarray of shape (n, d)
    perturbed : ndarray of shape (n, n_samples, d)
        Fully perturbed points (see :mod:`governance.explain.perturbation`).
    mask : ndarray of shape (n, d), bool
        Features to perturb per row; a row with an empty mask gets NaN.

    Returns
    -------
    ndarray of shape (n,)

    Examples
    --------
    >>> X = np.array([[1.0, 2.0]])
    >>> P = np.array([[[1.5, 0.0], [0.0, 9.0]]])
    >>> prediction_gap(lambda M: M.sum(axis=1), X, P, np.array([[True, False]])).tolist()
    [0.75]
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    n, t, d = perturbed.shape
    points = apply_mask(X, perturbed, mask).reshape(n * t, d)
    y = np.asarray(f(np.vstack([X, points])), dtype=float)
    base, pert = y[:n], y[n:].reshape(n, t)
    gap = np.abs(pert - base[:, None]).mean(axis=1)
    return np.where(mask.any(axis=1), gap, np.nan)


def reason_mask(reason_index: np.ndarray, d: int) -> np.ndarray:
    """Boolean (n, d) mask of the features listed in ``reason_index`` (-1 = no reason)."""
    reason_index = np.atleast_2d(np.asarray(reason_index, dtype=np.int64))
    mask = np.zeros((len(reason_index), d), dtype=bool)
    rows, cols = np.nonzero(reason_index >= 0)
    mask[rows, reason_index[rows, cols]] = True
    return mask


def topk_mask(explanations: np.ndarray, k: int) -> np.ndarray:
    """OpenXAI's choice of important features: the top ``k`` by |attribution| per row
    (``generate_mask``, with True marking the features to perturb)."""
    explanations = np.atleast_2d(np.asarray(explanations, dtype=float))
    order = np.argsort(-np.abs(explanations), axis=1, kind="stable")[:, :k]
    mask = np.zeros(explanations.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def random_mask(sizes: np.ndarray, d: int, rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """Per row, ``sizes[i]`` features drawn without replacement (the seeded random control)."""
    mask = np.zeros((len(sizes), d), dtype=bool)
    for i, (k, rng) in enumerate(zip(sizes, rngs, strict=True)):
        if k > 0:
            mask[i, rng.choice(d, size=int(k), replace=False)] = True
    return mask


@dataclass(frozen=True)
class Faithfulness:
    """Prediction gaps per decision (NaN where undefined, e.g. PGI without any reason).

    Attributes
    ----------
    k : ndarray of shape (n,), int
        Reasons perturbed for PGI.
    pgi, pgu, pgi_random : ndarray of shape (n,)
        Under OpenXAI's normal perturbation.
    pgi_background, pgu_background : ndarray of shape (n,)
        Under replacement from the background sample (NaN when not computed).
    """

    k: np.ndarray
    pgi: np.ndarray
    pgu: np.ndarray
    pgi_random: np.ndarray
    pgi_background: np.ndarray
    pgu_background: np.ndarray

    @property
    def not_above_random(self) -> np.ndarray:
        """True where the reasons' PGI is not above the random control's (NaN: undefined)."""
        out = np.where(self.pgi <= self.pgi_random, 1.0, 0.0)
        return np.where(np.isnan(self.pgi) | np.isnan(self.pgi_random), np.nan, out)


def faithfulness(
    f: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    reason_index: np.ndarray,
    space: FeatureSpace,
    keys: Sequence[str],
    settings: FaithfulnessSettings | None = None,
    background: np.ndarray | None = None,
) -> Faithfulness:
    """PGI, PGU and their controls for the disclosed reasons of each row.

    Parameters
    ----------
    f : callable
        Model output for a code matrix (the nightly run passes the probability of the
        favourable class).
    X : ndarray of shape (n, d)
        Decisions as a code matrix.
    reason_index : ndarray of shape (n, k)
        Feature positions of the reasons disclosed, -1 where fewer were given.
    space : FeatureSpace
    keys : sequence of str
        Decision ids: each row's seed.
    settings : FaithfulnessSettings, optional
    background : ndarray of shape (m, d), optional
        The explainer's background sample; without it the background gaps are NaN.

    Returns
    -------
    Faithfulness
    """
    s = settings or FaithfulnessSettings()
    X = np.atleast_2d(np.asarray(X, dtype=float))
    n, d = X.shape
    nan = np.full(n, np.nan)
    if n == 0:
        empty = np.empty(0)
        return Faithfulness(np.empty(0, dtype=np.int64), *([empty] * 5))
    reasons = reason_mask(reason_index, d)
    k = reasons.sum(axis=1)
    others = ~reasons
    normal = normal_perturbations(
        space, X, s.n_samples, s.std, row_generators(keys, s.seed, "normal")
    )
    blocks: list[tuple[str, np.ndarray, np.ndarray]] = [
        ("pgi", normal, reasons),
        ("pgu", normal, others),
    ]
    if s.random_control:
        rand = random_mask(k, d, row_generators(keys, s.seed, "random"))
        blocks.append(("pgi_random", normal, rand))
    if s.background and background is not None and len(background):
        drawn = background_perturbations(
            background, n, s.n_samples, row_generators(keys, s.seed, "background")
        )
        blocks += [("pgi_background", drawn, reasons), ("pgu_background", drawn, others)]
    # One model call for the rows and every perturbed point of every block.
    points = [X] + [apply_mask(X, p, m).reshape(n * s.n_samples, d) for _, p, m in blocks]
    y = _batched(f, np.vstack(points), s.max_batch_rows)
    base = y[:n]
    out = {"pgi_random": nan, "pgi_background": nan, "pgu_background": nan}
    for b, (name, _, mask) in enumerate(blocks):
        block = y[n + b * n * s.n_samples : n + (b + 1) * n * s.n_samples]
        gap = np.abs(block.reshape(n, s.n_samples) - base[:, None]).mean(axis=1)
        out[name] = np.where(mask.any(axis=1), gap, np.nan)
    return Faithfulness(
        k.astype(np.int64),
        out["pgi"],
        out["pgu"],
        out["pgi_random"],
        out["pgi_background"],
        out["pgu_background"],
    )


def _batched(f: Callable[[np.ndarray], np.ndarray], M: np.ndarray, rows: int) -> np.ndarray:
    if len(M) <= rows:
        return np.asarray(f(M), dtype=float)
    return np.concatenate(
        [np.asarray(f(M[i : i + rows]), dtype=float) for i in range(0, len(M), rows)]
    )
