"""Per-process caches: each Dask worker loads a model, explainer and engine once, not per task.

Every cache of a model version is keyed on its artifact hash and on the hash its manifest
records for its training data *now*: an erasure rewrites the training file and the manifest,
so the next task on a long-lived worker rebuilds whatever was fitted on it (the explainer's
background sample, the percentile cost's quantile grids, the stability scale) instead of
keeping an erased person's values in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from governance.explain.explainer import Explainer
from governance.explain.perturbation import FeatureSpace
from governance.recourse.action_set import ActionSet
from governance.recourse.costs import Cost, PercentileShiftCost
from governance.registry.model import DecisionModel
from governance.registry.model_registry import ModelRegistry
from governance.retraining.stability_score import feature_scale
from governance.store.engine import make_engine, session_factory


@dataclass(frozen=True)
class ModelRef:
    """A registered model version, small enough to ship to every task."""

    registry: str
    name: str
    version: str
    sha256: str


def training_sha256(ref: ModelRef) -> str | None:
    """The sha256 the version's manifest records for its training data now (None without
    training data). Read on every call, never cached: a purge changes it while workers run."""
    td = ModelRegistry(ref.registry).manifest(ref.name, ref.version).training_data
    return td.sha256 if td is not None else None


def model(ref: ModelRef) -> DecisionModel:
    """The verified model, cached per artifact and training-data hash."""
    return _model(ref, training_sha256(ref))


@lru_cache(maxsize=8)
def _model(ref: ModelRef, training: str | None) -> DecisionModel:
    return ModelRegistry(ref.registry).load(ref.name, ref.version)


def explainer(
    ref: ModelRef, background_size: int = 100, seed: int = 0, kind: str = "auto"
) -> Explainer:
    """The version's explainer of ``kind`` ("auto": by model family, or the one chosen with
    ``govern explainers compare``, which the flow passes as ``kind``), its background sampled
    from the training data as it is now."""
    return _explainer(ref, training_sha256(ref), background_size, seed, kind)


@lru_cache(maxsize=8)
def _explainer(
    ref: ModelRef, training: str | None, background_size: int, seed: int, kind: str
) -> Explainer:
    reg = ModelRegistry(ref.registry)
    if training:
        background = reg.training_frame(ref.name, ref.version, training)
    elif reg.manifest(ref.name, ref.version).reference_data is not None:
        # an imported version without training data: its reference sample
        background = reg.fit_frame(ref.name, ref.version)
    else:
        background = None
    return Explainer(
        _model(ref, training), background, background_size=background_size, seed=seed, kind=kind
    )


def feature_space(ref: ModelRef) -> FeatureSpace | None:
    """How the quality metrics perturb the version's features (training std per continuous
    feature, from the training data as it is now); None for a version without training data."""
    return _feature_space(ref, training_sha256(ref))


@lru_cache(maxsize=8)
def _feature_space(ref: ModelRef, training: str | None) -> FeatureSpace | None:
    if training is None:
        return None
    schema = _model(ref, training).schema
    train = ModelRegistry(ref.registry).training_frame(ref.name, ref.version, training)
    return FeatureSpace.from_schema(schema, feature_scale(schema, train)
    )


@lru_cache(maxsize=4)
def engine(url: str) -> sa.Engine:
    return make_engine(url)


@lru_cache(maxsize=4)
def sessions(url: str) -> sessionmaker[Session]:
    return session_factory(engine(url))


def recourse_inputs(ref: ModelRef) -> tuple[ActionSet, Cost, np.ndarray] | None:
    """The version's action set, its percentile-shift cost and the per-feature spread used for
    stability scores, all fitted on its training data as it is now (an imported version
    without them: its reference sample); None for a version without an action set."""
    return _recourse_inputs(ref, training_sha256(ref))


@lru_cache(maxsize=8)
def _recourse_inputs(
    ref: ModelRef, training: str | None
) -> tuple[ActionSet, Cost, np.ndarray] | None:
    reg = ModelRegistry(ref.registry)
    path = reg.action_set_path(ref.name, ref.version)
    if path is None:
        return None
    action_set = ActionSet.from_json(path)
    schema = _model(ref, training).schema
    action_set.check_schema(schema)
    if training is None:
        # no training data: the reference sample, or MissingTrainingData naming what is missing
        train = reg.fit_frame(ref.name, ref.version)
    else:
        # Exactly the bytes with the keyed hash: an erasure replacing the file meanwhile fails
        # this load (the task retries) instead of caching new data under the old key.
        train = reg.training_frame(ref.name, ref.version, training)
    return action_set, PercentileShiftCost.fit(train, schema), feature_scale(schema, train)


def salt_for(registry: str) -> bytes | None:
    """The tombstone salt of the data folder holding ``registry``, if any subject was erased.

    Not cached: the first erasure creates it while workers are running.
    """
    from pathlib import Path

    from governance import config
    from governance.deletion.requests import read_salt

    return read_salt(config.salt_path(Path(registry).parent))
