"""Per-process caches: each Dask worker loads a model, explainer and engine once, not per task."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from governance.explain import Explainer
from governance.model import DecisionModel
from governance.registry import ModelRegistry
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
def explainer(ref: ModelRef, background_size: int = 100, seed: int = 0) -> Explainer:
    reg = ModelRegistry(ref.registry)
    manifest = reg.manifest(ref.name, ref.version)
    background = reg.training_frame(ref.name, ref.version) if manifest.training_data else None
    return Explainer(model(ref), background, background_size=background_size, seed=seed)


@lru_cache(maxsize=4)
def engine(url: str) -> sa.Engine:
    return make_engine(url)


@lru_cache(maxsize=4)
def sessions(url: str) -> sessionmaker[Session]:
    return session_factory(engine(url))
