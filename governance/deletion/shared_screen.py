"""Deletion fragility of every open recourse at once: shared deletion sets, retrained exactly.

The per-recourse searches of :mod:`governance.deletion.fragility_search` follow one deletion
sequence per recourse, so for families without influence estimates they retrain about ``K``
times per recourse (seconds each). The screen turns that around: it builds a modest number of
candidate deletion sets, retrains the recipe once without each set, and scores *every* open
recourse point under each retrained model in one ``predict_proba`` call. Its cost grows with the
number of deletion sets tried (at most ``K * groups * width`` retrains), not with the number of
recourses.

What is proven, and what is not
-------------------------------
- ``k = t >= 1``: the model retrained by the recipe without a set of ``t`` training rows
  (``removed``, listed in the order the set was grown) scores the point below the threshold.
  That set is a witness, checked by an exact retrain; ``t`` is the size of the smallest tried
  set that breaks the recourse, so it is an upper bound on the true minimum number of
  deletions, not the minimum.
- ``k = -1`` ("not broken by any tried set"): no deletion set among those tried breaks the
  recourse. This proves nothing about the sets not tried; it is not a proof that the recourse
  survives ``K`` deletions.
- ``k = 0``: the current model already rejects the point.

How the sets are built (a heuristic; only the retrained scores are trusted)
---------------------------------------------------------------------------
1. Every open recourse point gets its candidate rows from the same proxy ranking as the
   per-recourse search (:func:`governance.deletion.fragility_search.proxy_order`: for forests
   the leaf-removal effect, for other families the nearest favourable-labelled rows).
2. The open points are grouped by k-means (``groups`` groups, but at most one per 4 points,
   in the model's transformed space with each column standardised); each group ranks
   candidate rows by the votes of its members (a member's row at rank ``r`` votes
   ``1 / (1 + r)``).
3. Greedy growth per group, in rounds ``t = 1 .. K``: each group with members still unbroken
   tries its current set plus each of the ``width`` best-voted rows not in it; every distinct set
   is retrained once and every open point scored under it (any point broken by any set is
   recorded, whichever group the set was built for); the group keeps the child that lowers the
   mean of ``min(score, threshold)`` over its unbroken members most.

``score_path`` holds the retrained scores of the point under the nested prefixes of its
witness set (every prefix was itself a tried set), or, for a point no tried set broke, under its
group's sets, round by round.

Agreement with the exact greedy (:func:`exhaustive_greedy`: at every step, a retrain without
each remaining row, per recourse) is measured on small samples by ``bench/deletion.py`` and
``tests/governance/deletion/test_fragility.py``; the figures are in ``bench/README.md``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from governance.deletion.fragility_search import FragilityResult, positive_int, proxy_order
from governance.deletion.retrain import refit_scores
from governance.exceptions import FragilityError
from governance.registry.model import DecisionModel
from governance.registry.training import TrainingRecipe

SCREEN = "screen"
EXHAUSTIVE = "exhaustive"
GROUPS = 16
WIDTH = 4
# Candidate rows per recourse that vote for its group's ranking.
VOTERS = 50
# Open recourses per group at least: a handful of recourses need no more sets than that.
MIN_GROUP = 4


class _Retrainer:
    """Retrain the recipe without a deletion set and score every query point in one call."""

    def __init__(
        self,
        model: DecisionModel,
        recipe: TrainingRecipe,
        frame_train: pd.DataFrame,
        y: np.ndarray,
        frame_q: pd.DataFrame,
        n_jobs: int,
    ) -> None:
        self.model, self.recipe = model, recipe
        self.frame_train, self.y, self.frame_q = frame_train, y, frame_q
        self.n_jobs = n_jobs
        self.refits = 0

    def _one(self, key: tuple[int, ...]) -> np.ndarray:
        return refit_scores(self.model, self.recipe, self.frame_train, self.y, key, self.frame_q)

    def scores(self, keys: list[tuple[int, ...]]) -> Iterator[np.ndarray]:
        """Scores of every query point under the model retrained without each set, in order."""
        self.refits += len(keys)
        if self.n_jobs == 1 or len(keys) < 2:
            yield from map(self._one, keys)
            return
        # Fits release the GIL in their compiled loops; one native thread each avoids
        # oversubscribing the cores the pool already fills.
        with threadpool_limits(1), ThreadPoolExecutor(self.n_jobs) as pool:
            yield from pool.map(self._one, keys)


def _frames(
    model: DecisionModel, X_train: pd.DataFrame, y_train: np.ndarray, X_recourse: object
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    y = np.asarray(y_train)
    if y.ndim != 1 or len(y) != len(X_train):
        raise FragilityError(
            f"y_train has shape {y.shape}; expected ({len(X_train)},) to match X_train"
        )
    return (
        model.frame(X_train).reset_index(drop=True),
        y,
        model.frame(X_recourse).reset_index(drop=True),
    )


def screen(
    model: DecisionModel,
    recipe: TrainingRecipe,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_recourse: pd.DataFrame | np.ndarray,
    *,
    K: int = 5,
    groups: int = GROUPS,
    width: int = WIDTH,
    candidates: int = 200,
    seed: int = 0,
    n_jobs: int = 1,
) -> FragilityResult:
    """Screen every open recourse against shared deletion sets, each retrained once.

    See the module docstring for what a result proves: ``k >= 1`` names a deletion set whose
    exact retrain breaks the recourse (an upper bound on the minimum); ``k = -1`` only says
    that no tried set broke it.

    Parameters
    ----------
    model : DecisionModel
        The current model, a recipe-built Pipeline fitted on ``(X_train, y_train)``.
    recipe : TrainingRecipe
        How to retrain without a deletion set.
    X_train : DataFrame of shape (n_train, n_features)
        Training rows; positions in the result index its rows.
    y_train : array-like of shape (n_train,)
        Training labels.
    X_recourse : DataFrame or ndarray of shape (R, n_features)
        Issued recourse points.
    K : int, default=5
        Largest deletion set tried.
    groups : int, default=16
        Groups of recourse points that grow a deletion set together (at most one per 4 open
        points).
    width : int, default=4
        Candidate rows tried per group and round.
    candidates : int, default=200
        Proxy candidates per recourse (see ``proxy_order``).
    seed : int, default=0
        Seeds the grouping and the proxy ranking's tie-breaks.
    n_jobs : int, default=1
        Retrains run at once (threads).

    Returns
    -------
    FragilityResult
        ``method="screen"``; ``refits`` is the number of deletion sets tried.

    Raises
    ------
    FragilityError
        On a bad ``K``, ``groups``, ``width``, ``candidates`` or ``n_jobs``, or mismatched
        lengths.
    """
    K = positive_int(K, "K")
    groups, width = positive_int(groups, "groups"), positive_int(width, "width")
    candidates, n_jobs = positive_int(candidates, "candidates"), positive_int(n_jobs, "n_jobs")
    frame_train, y, frame_q = _frames(model, X_train, y_train, X_recourse)
    threshold = float(model.threshold)
    base = model.score(frame_q)
    R = len(base)
    k = np.where(base < threshold, 0, -1).astype(np.int64)
    removed: list[list[int]] = [[] for _ in range(R)]
    path: list[list[float]] = [[] for _ in range(R)]
    open_ = np.flatnonzero(k == -1)
    if open_.size == 0:
        return FragilityResult(k, removed, path, SCREEN, K, 0)
    q_open = frame_q.iloc[open_].reset_index(drop=True)
    ranked = proxy_order(model, frame_train, y, q_open, candidates, seed)
    label = _group(model, frame_train, q_open, groups, seed)
    votes = [_votes(ranked[label == g]) for g in range(int(label.max()) + 1)]
    retrain = _Retrainer(model, recipe, frame_train, y, q_open, n_jobs)
    by_set: dict[frozenset[int], np.ndarray] = {}  # retrained set -> scores of the open points
    tried: dict[tuple[int, ...], np.ndarray] = {}  # the same, by set in growth order
    chains: list[tuple[int, ...]] = [() for _ in votes]
    broken = np.zeros(open_.size, dtype=bool)
    for t in range(1, K + 1):
        children: dict[int, list[tuple[int, ...]]] = {}
        unbroken: dict[int, np.ndarray] = {}
        for g, chain in enumerate(chains):
            members = (label == g) & ~broken
            if len(chain) != t - 1 or not members.any():
                continue  # every member broken, or the candidates ran out
            nxt = [c for c in votes[g] if c not in chain][:width]
            children[g] = [(*chain, c) for c in nxt]
            unbroken[g] = members
        # One retrain per distinct set, whichever groups grew it and in whatever order.
        wanted = {frozenset(s): s for kids in children.values() for s in kids}
        new = [s for key, s in wanted.items() if key not in by_set]
        for key, scores in zip(new, retrain.scores(new), strict=True):
            by_set[frozenset(key)] = scores
            hit = ~broken & (scores < threshold)
            for i in np.flatnonzero(hit):
                k[open_[i]] = t
                removed[open_[i]] = list(key)
            broken |= hit
        for g, kids in children.items():
            for s in kids:
                tried[s] = by_set[frozenset(s)]
            clipped = [np.minimum(tried[s][unbroken[g]], threshold).mean() for s in kids]
            chains[g] = kids[int(np.argmin(clipped))]
    for i, j in enumerate(open_):
        witness = removed[j] if k[j] > 0 else list(chains[label[i]])
        removed[j] = witness
        path[j] = [float(tried[tuple(witness[:s])][i]) for s in range(1, len(witness) + 1)]
    return FragilityResult(k, removed, path, SCREEN, K, retrain.refits)


def _group(
    model: DecisionModel, frame_train: pd.DataFrame, q: pd.DataFrame, groups: int, seed: int
) -> np.ndarray:
    """k-means labels of the recourse points in the transformed, standardised space."""
    pre = model.estimator.named_steps["pre"]
    Zt = np.asarray(pre.transform(frame_train), dtype=float)
    Zq = np.asarray(pre.transform(q), dtype=float)
    sd = Zt.std(axis=0)
    sd[sd == 0] = 1.0
    Zq = np.nan_to_num((Zq - Zt.mean(axis=0)) / sd)
    n = min(groups, len(q) // MIN_GROUP, len(np.unique(Zq, axis=0)))
    if n <= 1:
        return np.zeros(len(q), dtype=np.int64)
    km = KMeans(n_clusters=n, n_init=1, random_state=seed).fit(Zq)
    # Relabel 0..G-1 without gaps (k-means can leave a cluster empty only in degenerate data).
    return np.unique(km.labels_, return_inverse=True)[1].astype(np.int64)


def _votes(ranked: np.ndarray) -> list[int]:
    """Candidate rows of a group, most voted first (rank r votes 1 / (1 + r))."""
    top = ranked[:, :VOTERS]
    weight = np.broadcast_to(1.0 / (1.0 + np.arange(top.shape[1])), top.shape)
    ok = top >= 0
    rows, inv = np.unique(top[ok], return_inverse=True)
    total = np.bincount(inv, weights=weight[ok], minlength=rows.size)
    order = np.lexsort((rows, -total))
    return [int(r) for r in rows[order]]


def exhaustive_greedy(
    model: DecisionModel,
    recipe: TrainingRecipe,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_recourse: pd.DataFrame | np.ndarray,
    *,
    K: int = 2,
    n_jobs: int = 1,
) -> FragilityResult:
    """The exact greedy, by brute force: the reference the screen is checked against.

    At every step and for every recourse, the recipe is retrained without the rows removed so
    far plus each remaining training row in turn, and the deletion giving the lowest score at
    the point is kept (ties: the lowest row). ``k`` is the step at which the score first falls
    below the threshold (-1: not within ``K`` steps). Recourses that share the rows removed so
    far share the retrains, and every retrained model scores all of them in one call; still,
    a step costs one retrain per remaining row, so this is for small training sets only. With
    ``K = 1`` it is exact: ``k = 1`` if and only if some single deletion breaks the recourse.

    Parameters
    ----------
    model, recipe, X_train, y_train, X_recourse
        As for :func:`screen`.
    K : int, default=2
        Steps.
    n_jobs : int, default=1
        Retrains run at once (threads).

    Returns
    -------
    FragilityResult
        ``method="exhaustive"``; ``refits`` counts the retrains.
    """
    K, n_jobs = positive_int(K, "K"), positive_int(n_jobs, "n_jobs")
    frame_train, y, frame_q = _frames(model, X_train, y_train, X_recourse)
    threshold = float(model.threshold)
    base = model.score(frame_q)
    R, n = len(base), len(frame_train)
    k = np.where(base < threshold, 0, -1).astype(np.int64)
    removed: list[list[int]] = [[] for _ in range(R)]
    path: list[list[float]] = [[] for _ in range(R)]
    refits = 0
    for _ in range(K):
        by_prefix: dict[tuple[int, ...], list[int]] = defaultdict(list)
        for j in np.flatnonzero(k == -1):
            by_prefix[tuple(removed[j])].append(int(j))
        for prefix, js in by_prefix.items():
            gone = set(prefix)
            rest = [i for i in range(n) if i not in gone]
            retrain = _Retrainer(model, recipe, frame_train, y, frame_q.iloc[js], n_jobs)
            S = np.vstack(list(retrain.scores([(*prefix, i) for i in rest])))  # (rows, |js|)
            refits += retrain.refits
            best = np.argmin(S, axis=0)  # first minimum: the lowest row on ties
            for col, j in enumerate(js):
                removed[j].append(rest[best[col]])
                s = float(S[best[col], col])
                path[j].append(s)
                if s < threshold:
                    k[j] = len(removed[j])
    return FragilityResult(k, removed, path, EXHAUSTIVE, K, refits)


def agreement(screened: FragilityResult, greedy: FragilityResult) -> dict[str, float | int]:
    """How the screen's verdicts compare with the exact greedy on the same recourse points.

    Returns
    -------
    dict
        ``n`` (currently valid points), ``verdicts`` (share with the same broken-within-K
        verdict), ``same_k``, ``screen_k_at_most_greedy`` (share where the screen's witness is
        no larger than the greedy's, among points both break), ``greedy_broken``,
        ``screen_broken``, ``missed`` (greedy breaks, screen does not) and ``extra`` (screen
        breaks, greedy does not); with ``K = 1`` for the greedy, ``missed`` counts single
        deletions that break a recourse and that the screen did not try.
    """
    valid = greedy.k != 0
    gk, sk = greedy.k[valid], screened.k[valid]
    K = min(greedy.K, screened.K)
    g_b = (gk >= 1) & (gk <= K)
    s_b = (sk >= 1) & (sk <= K)
    both = g_b & s_b
    n = int(valid.sum())
    return {
        "n": n,
        "verdicts": float(np.mean(g_b == s_b)) if n else float("nan"),
        "same_k": float(np.mean(np.where(g_b, gk, -1) == np.where(s_b, sk, -1)))
        if n
        else float("nan"),
        "screen_k_at_most_greedy": float(np.mean(sk[both] <= gk[both]))
        if both.any()
        else float("nan"),
        "greedy_broken": int(g_b.sum()),
        "screen_broken": int(s_b.sum()),
        "missed": int((g_b & ~s_b).sum()),
        "extra": int((s_b & ~g_b).sum()),
    }

