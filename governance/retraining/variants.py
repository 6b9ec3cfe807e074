"""Retrained variants of a model version, for a forward estimate of recourse validity.

A deployed version is one draw from its training recipe: another seed or another sample of the
same population gives a slightly different model. Refitting the recipe ``N`` times (variant
``i`` with its own seed and bootstrap resample, both derived from ``i``) and asking how many
variants still approve an issued recourse point estimates how likely the recourse survives the
next retraining, the "naturally-occurring model change" of Hamman et al. (ICML 2023), whose
evaluation retrains 50 networks from fresh initialisations.

Variant ``i`` is fully determined by the recipe, the training frame, ``i`` and ``base_seed``
(:func:`variant_seeds`), so variants can be fitted on any worker, in any order, and refitted
for an audit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from governance.exceptions import RobustnessError
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

_SEED_MOD = 2**31 - 1  # estimators take a random_state below 2**32; keep to int32 for safety


def variant_seeds(recipe_seed: int, index: int, base_seed: int = 0) -> tuple[int, int]:
    """The estimator seed and the bootstrap seed of variant ``index``.

    Both come from ``numpy.random.SeedSequence([base_seed, recipe_seed, index])``, so they
    differ across indices and never equal the deployed model's seed by construction.

    Parameters
    ----------
    recipe_seed : int
        The recorded recipe's seed.
    index : int
        Variant number, >= 0.
    base_seed : int, default=0
        Changes every variant at once.

    Returns
    -------
    (estimator_seed, bootstrap_seed) : tuple of int

    Raises
    ------
    RobustnessError
        If ``index`` is not a non-negative integer.

    Examples
    --------
    >>> variant_seeds(7, 0) == variant_seeds(7, 0) != variant_seeds(7, 1)
    True
    """
    if isinstance(index, bool) or int(index) != index or index < 0:
        raise RobustnessError(f"variant index must be a non-negative integer; got {index!r}")
    ss = np.random.SeedSequence([int(base_seed) % 2**63, int(recipe_seed) % 2**63, int(index)])
    a, b = ss.generate_state(2, dtype=np.uint64)
    return int(a % _SEED_MOD), int(b % _SEED_MOD)


def fit_variant(
    recipe: TrainingRecipe,
    schema: FeatureSchema,
    train: pd.DataFrame,
    index: int,
    *,
    base_seed: int = 0,
    bootstrap: bool = True,
) -> Pipeline:
    """Refit the recipe as variant ``index``: its own seed and, by default, a bootstrap sample.

    Parameters
    ----------
    recipe : TrainingRecipe
        The new version's recorded recipe; its ``seed`` is replaced by the variant's.
    schema : FeatureSchema
        Input features.
    train : DataFrame
        The version's training rows: the schema's columns and ``recipe.label``.
    index : int
        Variant number, >= 0.
    base_seed : int, default=0
        See :func:`variant_seeds`.
    bootstrap : bool, default=True
        Fit on ``len(train)`` rows drawn with replacement (the bootstrap seed); False fits on
        ``train`` as is, so only the estimator seed varies.

    Returns
    -------
    Pipeline
        Fitted, as :meth:`TrainingRecipe.fit` returns it.

    Raises
    ------
    RobustnessError
        If ``index`` is invalid, ``train`` lacks columns or has fewer than two rows.
    """
    seed = recipe.seed if recipe.seed is not None else 0  # imported: random_state was None
    est_seed, boot_seed = variant_seeds(seed, index, base_seed)
    missing = [c for c in [*schema.names, recipe.label] if c not in train.columns]
    if missing:
        raise RobustnessError(f"training data lacks column(s) {', '.join(missing)}")
    if len(train) < 2:
        raise RobustnessError(f"training data must have at least 2 rows; got {len(train)}")
    rows = train
    if bootstrap:
        pick = np.random.default_rng(boot_seed).integers(0, len(train), len(train))
        rows = train.iloc[pick].reset_index(drop=True)
    variant = dataclasses.replace(recipe, seed=est_seed)
    return variant.fit(schema, rows, rows[recipe.label].to_numpy())


def forward_validity(models: Sequence[DecisionModel], X_after: np.ndarray) -> np.ndarray:
    """Share of ``models`` that approve each point.

    Parameters
    ----------
    models : sequence of DecisionModel
        Retrained variants (or any later models) with the same schema.
    X_after : ndarray of shape (n_rows, n_features)
        Recourse points in schema order, categories as codes; rows with a NaN (no recourse
        issued) get NaN.

    Returns
    -------
    share : ndarray of shape (n_rows,)
        In ``[0, 1]``, or NaN.

    Raises
    ------
    RobustnessError
        If ``models`` is empty or ``X_after`` has the wrong shape.
    """
    if len(models) == 0:
        raise RobustnessError("forward_validity needs at least one model; got none")
    d = len(models[0].schema)
    P = np.asarray(X_after, dtype=float)
    if P.ndim != 2 or P.shape[1] != d:
        raise RobustnessError(f"X_after must have shape (n, {d}) in schema order; got {P.shape}")
    out = np.full(len(P), np.nan)
    ok = np.flatnonzero(np.all(np.isfinite(P), axis=1))
    if ok.size:
        votes = np.zeros(ok.size)
        for m in models:
            votes += m.approve(P[ok])
        out[ok] = votes / len(models)
    return out
