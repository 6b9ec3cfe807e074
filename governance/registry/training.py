"""Training recipes: enough to rebuild and refit a model version exactly."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from governance.exceptions import ManifestError
from governance.registry.schema import FeatureSchema

# Short names a manifest may use; any importable "module.Class" also works.
ESTIMATORS = {
    "logistic_regression": "sklearn.linear_model.LogisticRegression",
    "hist_gradient_boosting": "sklearn.ensemble.HistGradientBoostingClassifier",
    "gradient_boosting": "sklearn.ensemble.GradientBoostingClassifier",
    "random_forest": "sklearn.ensemble.RandomForestClassifier",
    "decision_tree": "sklearn.tree.DecisionTreeClassifier",
    "mlp": "sklearn.neural_network.MLPClassifier",
    "xgboost": "xgboost.XGBClassifier",
    "lightgbm": "lightgbm.LGBMClassifier",
}
# Estimators that need centred, scaled numeric inputs to train well.
_SCALED = {"logistic_regression", "mlp"}
_ALLOWED_MODULES = ("sklearn.", "xgboost.", "lightgbm.")


@dataclass(frozen=True)
class TrainingRecipe:
    """How a model version was trained.

    Parameters
    ----------
    estimator : str
        A short name from ``ESTIMATORS`` or a dotted ``module.Class`` path inside scikit-learn,
        XGBoost or LightGBM.
    params : dict
        Keyword arguments of the estimator.
    seed : int
        Passed as ``random_state`` (or ``seed``) where the estimator takes one.
    scale_numeric : bool or None
        Standardise numeric inputs before the estimator; None chooses per estimator.
    label : str
        Name of the label column in the training data.
    """

    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    scale_numeric: bool | None = None
    label: str = "label"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRecipe:
        try:
            return cls(**d)
        except TypeError as exc:
            raise ManifestError(f"malformed training recipe: {exc}") from exc

    def estimator_class(self) -> type:
        path = ESTIMATORS.get(self.estimator, self.estimator)
        if not path.startswith(_ALLOWED_MODULES):
            raise ManifestError(
                f"estimator {self.estimator!r} is not a known short name or a scikit-learn, "
                f"XGBoost or LightGBM class; known: {', '.join(ESTIMATORS)}"
            )
        module, _, cls_name = path.rpartition(".")
        try:
            return getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise ManifestError(f"cannot import estimator {path!r}: {exc}") from exc

    def build(self, schema: FeatureSchema) -> Pipeline:
        """Return an unfitted Pipeline: one-hot for categories, optional scaling, estimator."""
        cls = self.estimator_class()
        params = dict(self.params)
        accepted = cls().get_params()
        for key in ("random_state", "seed"):
            if key in accepted and key not in params:
                params[key] = self.seed
                break
        if self.estimator == "lightgbm":
            params.setdefault("verbose", -1)  # LightGBM logs every tree at INFO otherwise
        scale = self.scale_numeric if self.scale_numeric is not None else self.estimator in _SCALED
        transformers = []
        if schema.numeric:
            transformers.append(
                ("num", StandardScaler() if scale else "passthrough", schema.numeric)
            )
        if schema.categorical:
            cats = [list(schema[c].categories) for c in schema.categorical]
            transformers.append(
                (
                    "cat",
                    OneHotEncoder(categories=cats, handle_unknown="ignore", sparse_output=False),
                    schema.categorical,
                )
            )
        pre = ColumnTransformer(transformers, verbose_feature_names_out=False)
        return Pipeline([("pre", pre), ("model", cls(**params))])

    def fit(
        self,
        schema: FeatureSchema,
        X: pd.DataFrame,
        y: np.ndarray | pd.Series,
        sample_weight: np.ndarray | None = None,
    ) -> Pipeline:
        """Build and fit the pipeline on ``X`` (schema columns) and labels ``y``."""
        pipe = self.build(schema)
        frame = X.loc[:, schema.names].copy()
        for name in schema.categorical:
            frame[name] = frame[name].astype(str)
        kwargs = {} if sample_weight is None else {"model__sample_weight": sample_weight}
        return pipe.fit(frame, np.asarray(y), **kwargs)
