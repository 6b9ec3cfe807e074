"""Stability of issued recourse under retraining (Hamman et al., ICML 2023, "T-Rex").

For a recourse point ``x'`` and the issuing model's probability of the favourable class ``m``,
the practical relaxation of the paper's stability measure (its released ``gaussian_volume``) is::

    R(x') = (1/k) sum_i m(x' + d_i) - (1/k) sum_i |m(x' + d_i) - m(x')|,   d_i ~ N(0, sigma^2 I)

on standardised features. A point deep inside the approved region, where the score is high and
flat, gets ``R`` close to ``m(x')``; a point on a ridge or near the boundary loses the mean
absolute deviation. Since ``m_i - |m_i - m(x')| = min(m(x'), 2 m_i - m(x'))``, ``R <= m(x')``
always; ``R >= -m(x') >= -1``.

How the noise is applied (``scale`` from :func:`feature_scale`, ``sigma`` default 0.05):

- ``float`` features: ``x_j + sigma * scale_j * z_j`` with ``z_j ~ N(0, 1)``;
- ``int`` features: the same, then rounded to the nearest integer, so every sample is a value
  the model meets in real applications (at ``sigma = 0.05`` a count whose spread is below about
  10 moves by less than half a unit and is in effect not perturbed);
- ``bool`` and ``category`` features are not perturbed: a Gaussian step of a twentieth of a
  spread never crosses half the distance between 0 and 1, and categories have no distance;
- features with ``scale_j = 0`` (constant in the reference data) are not perturbed;
- samples are clipped to the schema's ``[min, max]``, so the model is never asked about values
  outside its declared domain.

Randomness. Each distinct point draws its ``k`` noise vectors from its own stream, seeded by
:func:`governance.hashing.row_seeds` on the point's values and ``seed``: the same point gets the
same ``R`` on any worker, in any row order and in any rerun. Duplicated rows are scored once.
Points are perturbed for a whole chunk of rows and scored in one ``model.score`` call per chunk
(``batch_rows`` sample rows), except for the tree ensembles below.

Tree ensembles. For the scikit-learn tree models that :mod:`governance.recourse` parses (decision
trees, random and extra forests, gradient boosting, histogram gradient boosting; bare or in the
recipe pipelines), the samples are not sent to ``predict_proba``: their scores are replayed from
the parsed trees in the model's own arithmetic, bit for bit. Each point's box (the range of its
samples) is walked down every tree; most trees send the whole box to one leaf, and only below the
first split the box straddles are the samples routed node by node. Leaf values are then added
tree by tree in the model's order (boosting: zeros plus the baseline, then each stage; forests:
from zero, then divided by the number of trees) and passed through the model's own link, so
only the split nodes a point's box straddles are decided sample by sample, instead of one
root-to-leaf walk per tree and sample (``bench/stability.py`` measures the speed-up against
scoring every sample, and checks that the two agree bit for bit). Each call checks the replay
against ``model.score`` on four samples of every point of its first chunk (64 points at most)
and scores every sample with the model if a single bit differs.
"""


from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from governance.arrays import unique_rows
from governance.exceptions import RobustnessError
from governance.hashing import row_seeds
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.tree_replay import REPLAY_SAMPLES, TreeReplay

DEFAULT_K = 1000


DEFAULT_SIGMA = 0.05


BATCH_ROWS = 500_000  # perturbed sample rows per model call


_PRUNE_SLACK = 1e-12  # an upper bound must miss the bar by more than float noise to prune


_REPLAY = True  # replay parsed tree ensembles (tests and benchmarks turn it off to compare)


_CHECK_POINTS = 64  # points of the first chunk whose samples check the replay against the model


_CHECK_PER_POINT = 4


def feature_scale(schema: FeatureSchema, X_ref: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Per-feature standard deviation used to standardise the stability noise.

    Parameters
    ----------
    schema : FeatureSchema
        The model's features, in order.
    X_ref : ndarray of shape (n_rows, n_features) or DataFrame
        Reference data (the training rows of the model version): a matrix in schema order or a
        frame with the schema's columns. Category columns are not read.

    Returns
    -------
    scale : ndarray of shape (n_features,)
        Population standard deviation (``ddof=0``, NaN ignored) of every ``float`` and ``int``
        feature; 0 for ``bool`` and ``category`` features and for constant columns, which
        :func:`stability` does not perturb.

    Raises
    ------
    RobustnessError
        If ``X_ref`` has the wrong shape or columns, or a numeric feature has no finite value.

    Examples
    --------
    >>> from governance.schema import FeatureSpec
    >>> schema = FeatureSchema((FeatureSpec("a", "float"), FeatureSpec("b", "bool")))
    >>> feature_scale(schema, np.array([[1.0, 0.0], [3.0, 1.0]])).tolist()
    [1.0, 0.0]
    """
    names = schema.names
    if isinstance(X_ref, pd.DataFrame):
        missing = [n for n in names if n not in X_ref.columns]
        if missing:
            raise RobustnessError(f"reference data lacks feature(s) {', '.join(missing)}")
        cols = {
            s.name: pd.to_numeric(X_ref[s.name], errors="coerce").to_numpy(dtype=float)
            if s.dtype in ("float", "int")
            else np.zeros(len(X_ref))
            for s in schema
        }
        M = np.column_stack([cols[n] for n in names]) if names else np.zeros((len(X_ref), 0))
    else:
        M = np.asarray(X_ref, dtype=float)
        if M.ndim != 2 or M.shape[1] != len(schema):
            raise RobustnessError(
                f"reference matrix must have shape (n, {len(schema)}) in schema order; "
                f"got {M.shape}"
            )
    scale = np.zeros(len(schema))
    for j, spec in enumerate(schema):
        if spec.dtype not in ("float", "int"):
            continue
        col = M[:, j]
        col = col[np.isfinite(col)]
        if col.size == 0:
            raise RobustnessError(f"reference data has no finite values for {spec.name!r}")
        scale[j] = float(np.std(col))
    return scale


def stability(
    model: DecisionModel,
    X: np.ndarray | pd.DataFrame,
    scale: np.ndarray,
    *,
    k: int = DEFAULT_K,
    sigma: float = DEFAULT_SIGMA,
    seed: int = 0,
    batch_rows: int = BATCH_ROWS,
) -> np.ndarray:
    """Stability ``R`` of each point under the model (see the module docstring).

    Parameters
    ----------
    model : DecisionModel
        The issuing model; ``m`` is its ``score`` (probability of the favourable class).
    X : ndarray of shape (n_rows, n_features) or DataFrame
        Points (issued recourse ``x'``) in schema order, categories as integer codes.
    scale : ndarray of shape (n_features,)
        Per-feature spread, from :func:`feature_scale`.
    k : int, default=1000
        Gaussian samples per point.
    sigma : float, default=0.05
        Noise standard deviation in units of ``scale``.
    seed : int, default=0
        Mixed into every point's seed; store it with the scores.
    batch_rows : int, default=500_000
        Perturbed rows per ``model.score`` call (``batch_rows // (k + 1)`` points per call);
        replayed tree ensembles send the model only the points and a few check rows.

    Returns
    -------
    R : ndarray of shape (n_rows,)
        In ``[-1, 1]`` and at most ``m(x')``.

    Raises
    ------
    RobustnessError
        If ``X`` or ``scale`` has the wrong shape or holds non-finite values, or ``k``,
        ``sigma`` or ``batch_rows`` is out of range.

    Examples
    --------
    >>> from governance.schema import FeatureSpec
    >>> class Half:
    ...     classes_ = np.array([0, 1])
    ...     def predict_proba(self, frame):
    ...         return np.full((len(frame), 2), 0.5)
    >>> model = DecisionModel(Half(), FeatureSchema((FeatureSpec("a", "float"),)))
    >>> stability(model, np.array([[1.0]]), np.array([1.0]), k=10).tolist()
    [0.5]
    """
    M, scale, k, sigma, batch_rows = _check(model, X, scale, k, sigma, batch_rows)
    if len(M) == 0:
        return np.empty(0)
    U, inv = unique_rows(M)
    noise = _Noise.plan(model.schema, scale, sigma)
    scorer = _Scorer(model, noise)
    per = max(1, batch_rows // (k + 1))
    R = np.empty(len(U))
    if scorer.replay is None:
        for a in range(0, len(U), per):
            rows = U[a : a + per]
            Z = noise.draw(rows, k, seed)
            s = model.score(np.vstack([noise.points(rows, Z), rows]))  # samples, then the points
            m, m0 = s[: len(rows) * k].reshape(len(rows), k), s[len(rows) * k :]
            R[a : a + per] = _estimate(m, m0)
        return R[inv]
    m0 = np.concatenate([model.score(U[a : a + batch_rows]) for a in range(0, len(U), batch_rows)])
    per = scorer.points_per_chunk(per, k)
    for a in range(0, len(U), per):
        rows = U[a : a + per]
        Z = noise.draw(rows, k, seed, by_column=True)
        R[a : a + per] = _estimate(scorer.samples(rows, Z), m0[a : a + per])
    return R[inv]


def stability_at_least(
    model: DecisionModel,
    X: np.ndarray,
    scale: np.ndarray,
    tau: float,
    *,
    k: int = DEFAULT_K,
    sigma: float = DEFAULT_SIGMA,
    seed: int = 0,
    batch_rows: int = BATCH_ROWS,
) -> tuple[np.ndarray, np.ndarray]:
    """Which points have ``R >= tau``, with early exact rejection.

    The same ``R`` as :func:`stability` (same streams, same estimate), but the ``k`` samples
    are scored in four stages (an eighth, a quarter, a half, all); a point is dropped as soon
    as ``R`` cannot reach ``tau`` whatever its remaining samples give (each term of ``R`` is at
    most ``m(x')``), and points with ``m(x') < tau`` are dropped after one score. The verdict
    is exact: it equals ``stability(...) >= tau``, at a fraction of the model calls when most
    points fail. Replayed tree ensembles (see the module docstring) score all ``k`` samples at
    once, and the stages only decide which points are dropped (the same ones).

    Parameters
    ----------
    model, X, scale, k, sigma, seed, batch_rows
        As in :func:`stability` (``X`` a matrix in schema order).
    tau : float
        The bar.

    Returns
    -------
    passes : ndarray of bool, shape (n_rows,)
    R : ndarray of shape (n_rows,)
        The stability where it was computed in full (every passing point); NaN where the point
        was dropped early.

    Raises
    ------
    RobustnessError
        As :func:`stability`, or if ``tau`` is not finite.
    """
    M, scale, k, sigma, batch_rows = _check(model, X, scale, k, sigma, batch_rows)
    if not np.isfinite(tau):
        raise RobustnessError(f"tau must be a finite number; got {tau!r}")
    tau = float(tau)
    if len(M) == 0:
        return np.zeros(0, dtype=bool), np.empty(0)
    U, inv = unique_rows(M)
    noise = _Noise.plan(model.schema, scale, sigma)
    scorer = _Scorer(model, noise)
    m0 = np.concatenate([model.score(U[a : a + batch_rows]) for a in range(0, len(U), batch_rows)])
    R = np.full(len(U), np.nan)
    todo = np.flatnonzero(m0 >= tau - _PRUNE_SLACK)
    stages = sorted({max(1, k // 8), max(1, k // 4), max(1, k // 2), k})
    per = scorer.points_per_chunk(max(1, batch_rows // k), k)
    for a in range(0, len(todo), per):
        idx = todo[a : a + per]
        rows, base = U[idx], m0[idx]
        replay = scorer.replay is not None
        Z = noise.draw(rows, k, seed, by_column=replay)
        # a replay is cheap per sample: all at once, the stages then only decide what is dropped
        m = scorer.samples(rows, Z) if replay else np.empty((len(rows), k))
        alive = np.arange(len(rows))
        done = 0
        for stop in stages:
            if not replay:
                m[alive, done:stop] = scorer.samples(rows[alive], Z[alive, done:stop])
            terms = np.minimum(base[alive, None], 2 * m[alive, :stop] - base[alive, None])
            bound = (terms.sum(axis=1) + (k - stop) * base[alive]) / k
            alive = alive[bound >= tau - _PRUNE_SLACK]
            done = stop
            if alive.size == 0:
                break
        if alive.size:
            R[idx[alive]] = _estimate(m[alive], base[alive])
    passes = np.isfinite(R) & np.greater_equal(R, tau)
    return passes[inv], R[inv]


# ------------------------------------------------------------------------------------------
# internals
# ------------------------------------------------------------------------------------------
def _estimate(m: np.ndarray, m0: np.ndarray) -> np.ndarray:
    """``mean(m_i) - mean|m_i - m0|`` per row of ``m`` (shape (rows, k))."""
    return m.mean(axis=1) - np.abs(m - m0[:, None]).mean(axis=1)


def _check(model, X, scale, k, sigma, batch_rows):
    """Validate once at the edge; return clean values."""
    d = len(model.schema)
    M = model.matrix(X) if isinstance(X, pd.DataFrame) else np.asarray(X, dtype=float)
    if M.ndim != 2 or M.shape[1] != d:
        raise RobustnessError(f"X must have shape (n, {d}) in schema order; got {M.shape}")
    if not np.all(np.isfinite(M)):
        bad = [model.schema.names[j] for j in np.flatnonzero(~np.all(np.isfinite(M), axis=0))]
        raise RobustnessError(f"X has missing or non-finite values in {', '.join(bad)}")
    S = np.asarray(scale, dtype=float)
    if S.shape != (d,) or not np.all(np.isfinite(S)) or np.any(S < 0):
        raise RobustnessError(
            f"scale must hold {d} finite non-negative spreads, one per feature; got {scale!r}"
        )
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise RobustnessError(f"k must be a positive integer; got {k!r}")
    if not np.isfinite(sigma) or sigma < 0:
        raise RobustnessError(f"sigma must be a finite number >= 0; got {sigma!r}")
    if isinstance(batch_rows, bool) or int(batch_rows) != batch_rows or batch_rows < 1:
        raise RobustnessError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    return M, S, int(k), float(sigma), int(batch_rows)


@dataclass(frozen=True)
class _Noise:
    """Which columns move, by how much, which are rounded, and their bounds."""

    cols: np.ndarray  # perturbed columns
    step: np.ndarray  # sigma * scale of those columns
    rounded: np.ndarray  # int features among them (bool mask over ``cols``)
    lo: np.ndarray  # schema bounds of those columns (-inf / inf when open)
    hi: np.ndarray

    @classmethod
    def plan(cls, schema: FeatureSchema, scale: np.ndarray, sigma: float) -> _Noise:
        cols = [
            j
            for j, s in enumerate(schema)
            if s.dtype in ("float", "int") and scale[j] > 0 and sigma > 0
        ]
        specs = [schema.features[j] for j in cols]
        return cls(
            cols=np.asarray(cols, dtype=np.int64),
            step=sigma * scale[cols],
            rounded=np.array([s.dtype == "int" for s in specs], dtype=bool),
            lo=np.array([-np.inf if s.min is None else s.min for s in specs], dtype=float),
            hi=np.array([np.inf if s.max is None else s.max for s in specs], dtype=float),
        )

    def draw(self, rows: np.ndarray, k: int, seed: int, *, by_column: bool = False) -> np.ndarray:
        """Standard normal noise of shape (rows, k, perturbed columns), one stream per row
        (``by_column``: the same numbers, stored column by column, as :meth:`columns` reads)."""
        c = len(self.cols)
        if by_column:
            Zt = np.empty((len(rows), c, k))
            for i, s in enumerate(row_seeds(rows, seed) if c else []):
                Zt[i] = np.random.default_rng(int(s)).standard_normal((k, c)).T
            return Zt.transpose(0, 2, 1)
        Z = np.empty((len(rows), k, c))
        if c == 0:
            return Z
        for i, s in enumerate(row_seeds(rows, seed)):
            Z[i] = np.random.default_rng(int(s)).standard_normal((k, c))
        return Z

    def columns(self, rows: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """The perturbed columns of the samples, shape (rows, perturbed columns, Z.shape[1]):
        the values of :meth:`points`, laid out column by column."""
        V = np.multiply(Z.transpose(0, 2, 1), self.step[:, None], order="C")
        V += rows[:, self.cols][:, :, None]
        for a, b in _runs(self.rounded):
            np.round(V[:, a:b], out=V[:, a:b])
        np.maximum(V, self.lo[:, None], out=V)  # np.clip, in place
        return np.minimum(V, self.hi[:, None], out=V)

    def points(self, rows: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """The perturbed samples, shape (rows * Z.shape[1], n_features), row-major by point."""
        k = Z.shape[1]
        P = np.repeat(rows, k, axis=0)
        if len(self.cols) == 0:
            return P
        V = P[:, self.cols] + Z.reshape(-1, len(self.cols)) * self.step
        V[:, self.rounded] = np.round(V[:, self.rounded])
        P[:, self.cols] = np.clip(V, self.lo, self.hi)
        return P


class _Scorer:
    """Scores of the perturbed samples of a few points: replayed through a parsed tree ensemble
    once the replay has reproduced the model's scores bit for bit, otherwise ``model.score``."""

    def __init__(self, model: DecisionModel, noise: _Noise) -> None:
        self.model, self.noise = model, noise
        self.replay = TreeReplay.of(model, noise.cols) if _REPLAY else None
        self.verified = False

    def points_per_chunk(self, per: int, k: int) -> int:
        """Points per chunk: ``per`` for the model, fewer for the replay (it works in cache)."""
        return per if self.replay is None else max(1, min(per, REPLAY_SAMPLES // k))

    def samples(self, rows: np.ndarray, Z: np.ndarray) -> np.ndarray:
        """Scores of the samples ``noise.points(rows, Z)``, shape (rows, Z.shape[1])."""
        n, k = Z.shape[:2]
        if self.replay is None:
            return self.model.score(self.noise.points(rows, Z)).reshape(n, k)
        V = self.noise.columns(rows, Z)
        m = self.replay.scores(rows, V)
        if not self.verified:
            who = _check_samples(n, k)
            check = rows[who[0]].copy()
            check[:, self.noise.cols] = V[who[0], :, who[1]]
            if not np.array_equal(self.model.score(check), m[who[0], who[1]]):
                self.replay = None  # the replay is not the model's arithmetic: score as it is
                return self.samples(rows, Z)
            self.verified = True
        return m


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Start and stop of every run of True in ``mask``."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def _check_samples(n: int, k: int) -> np.ndarray:
    """(point, sample) indices, shape (2, m), checked against the model: a few spread samples of
    each of the first points."""
    points = np.arange(min(n, _CHECK_POINTS))
    samples = np.unique(np.linspace(0, k - 1, min(k, _CHECK_PER_POINT)).astype(np.int64))
    return np.stack([np.repeat(points, len(samples)), np.tile(samples, len(points))])
