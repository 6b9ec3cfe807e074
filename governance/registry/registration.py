"""Register a model version trained from a recipe on a Parquet file (the `govern models register`
path): the recipe, data hash and holdout metrics are recorded so the version can be retrained."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from governance.exceptions import ManifestError
from governance.fileio import read_parquet
from governance.hashing import sha256_file
from governance.registry.model import DecisionModel
from governance.registry.model_registry import Manifest, ModelRegistry, TrainingData
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

_ID_COLUMNS = {"subject_id", "decision_id"}


def _label_value(values: np.ndarray, text: str) -> Any:
    for v in np.unique(values):
        if str(v) == text:
            return v.item() if isinstance(v, np.generic) else v
    raise ManifestError(f"favourable label {text!r} does not occur; labels: {np.unique(values)}")


def register_from_data(
    registry: ModelRegistry,
    name: str,
    version: str,
    data: str | Path,
    *,
    label: str,
    estimator: str,
    params: dict[str, Any] | None = None,
    seed: int = 0,
    favourable: str = "1",
    threshold: float = 0.5,
    features: Sequence[str] | None = None,
    action_set: str | Path | None = None,
    test_size: float = 0.2,
    owned: bool = False,
) -> Manifest:
    """Fit ``estimator`` on ``data`` and register it; metrics come from a seeded holdout.

    The registered model is refit on all rows, so the recipe reproduces it exactly. ``data``
    stays where it is; ``owned`` declares that an erasure may rewrite it even though it lies
    outside the data folder (otherwise its owner gets an erasure notice instead).
    """
    frame = read_parquet(data, "training data")
    if label not in frame.columns:
        raise ManifestError(f"label column {label!r} not in {data}")
    cols = list(features) if features else [
        c for c in frame.columns if c != label and c not in _ID_COLUMNS
    ]
    schema = FeatureSchema.from_frame(frame[cols])
    recipe = TrainingRecipe(estimator, dict(params or {}), seed, label=label)
    y = frame[label].to_numpy()
    fav = _label_value(y, favourable)
    train, test = train_test_split(frame, test_size=test_size, random_state=seed,
                                   stratify=y if len(np.unique(y)) > 1 else None)
    holdout = DecisionModel(recipe.fit(schema, train, train[label].to_numpy()), schema, fav,
                            threshold)
    p = holdout.score(test)
    yt = (test[label].to_numpy() == fav).astype(int)
    metrics = {"test_rows": len(test), "auc": round(float(roc_auc_score(yt, p)), 4),
               "accuracy": round(float(accuracy_score(yt, p >= threshold)), 4)}
    fitted = recipe.fit(schema, frame, y)
    path = Path(data).resolve()
    try:
        rel = os.path.relpath(path, registry.root.resolve())
    except ValueError:
        rel = str(path)
    return registry.register(
        name, version, fitted, schema, recipe, favourable_class=fav, threshold=threshold,
        training_data=TrainingData(rel, sha256_file(path), len(frame), label, owned=owned),
        metrics=metrics, action_set_path=action_set,
    )
