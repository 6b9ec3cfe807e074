"""Per-process caches: each Dask worker loads a model, explainer and engine once, not per task."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from governance.exceptions import ManifestError
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


@lru_cache(maxsize=8)
def model(ref: ModelRef) -> DecisionModel:
    """The verified model; the sha256 in ``ref`` is part of the key, so a new artifact reloads."""
    loaded = ModelRegistry(ref.registry).load(ref.name, ref.version)
    return loaded


@lru_cache(maxsize=8)
def explainer(
    ref: ModelRef, background_size: int = 100, seed: int = 0, kind: str = "auto"
) -> Explainer:
    """The version's explainer of ``kind`` ("auto": by model family, or the one chosen with
    ``govern explainers compare``, which the flow passes as ``kind``)."""
    reg = ModelRegistry(ref.registry)
    manifest = reg.manifest(ref.name, ref.version)
    background = reg.training_frame(ref.name, ref.version) if manifest.training_data else None
    return Explainer(
        model(ref), background, background_size=background_size, seed=seed, kind=kind
    )


@lru_cache(maxsize=8)
def feature_space(ref: ModelRef) -> FeatureSpace | None:
    """How the quality metrics perturb the version's features (training std per continuous
    feature); None for a version without training data."""
    reg = ModelRegistry(ref.registry)
    if reg.manifest(ref.name, ref.version).training_data is None:
        return None
    schema = model(ref).schema
    return FeatureSpace.from_schema(
        schema, feature_scale(schema, reg.training_frame(ref.name, ref.version))
    )


@lru_cache(maxsize=4)
def engine(url: str) -> sa.Engine:
    return make_engine(url)


@lru_cache(maxsize=4)
def sessions(url: str) -> sessionmaker[Session]:
    return session_factory(engine(url))


@lru_cache(maxsize=8)
def recourse_inputs(ref: ModelRef) -> tuple[ActionSet, Cost, np.ndarray] | None:
    """The version's action set, its percentile-shift cost and the per-feature spread used for
    stability scores, all fitted on its training data; None for a version without an action
    set."""
    reg = ModelRegistry(ref.registry)
    path = reg.action_set_path(ref.name, ref.version)
    if path is None:
        return None
    action_set = ActionSet.from_json(path)
    schema = model(ref).schema
    action_set.check_schema(schema)
    if reg.manifest(ref.name, ref.version).training_data is None:
        raise ManifestError(
            f"model {ref.name} {ref.version} has an action set but no training data to fit "
            "the recourse cost on"
        )
    train = reg.training_frame(ref.name, ref.version)
    return action_set, PercentileShiftCost.fit(train, schema), feature_scale(schema, train)


def salt_for(registry: str) -> bytes | None:
    """The tombstone salt of the data folder holding ``registry``, if any subject was erased.

    Not cached: the first erasure creates it while workers are running.
    """
    from pathlib import Path

    from governance import config
    from governance.deletion.requests import read_salt

    return read_salt(config.salt_path(Path(registry).parent))
