"""Training recipes: enough to rebuild and refit a model version exactly.

A recipe either builds the product's own Pipeline from a named estimator, or, for a model the
user fitted elsewhere and imported (estimator ``"clone"``), refits scikit-learn's ``clone`` of
the registered artifact: same classes, same hyper-parameters, fitted afresh.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

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
CLONE = "clone"


class Template(Protocol):
    """Where a clone recipe's fitted artifact comes from (the registry binds one)."""

    def load(self) -> Any: ...


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
    sample_weight : str or None
        Column of the training data holding each row's weight, passed to the final
        estimator's ``fit`` as ``sample_weight``.
    category_input : {"text", "category"}
        How category features reach the estimator: text, or pandas categoricals with the
        schema's categories (for estimators that read the dtype, such as histogram gradient
        boosting with ``categorical_features="from_dtype"``).
    template : Template or None
        Clone recipes only, bound by the registry and never serialised: the artifact to clone.

    Notes
    -----
    With ``estimator="clone"`` the seed, when not None, is set on every ``random_state``
    (or ``seed``) parameter of the cloned estimator, nested steps included; None keeps them.
    """

    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = 0
    scale_numeric: bool | None = None
    label: str = "label"
    sample_weight: str | None = None
    category_input: str = "text"
    template: Template | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "template"}
        out["params"] = dict(self.params)
        if self.sample_weight is None:
            out.pop("sample_weight")
        if self.category_input == "text":
            out.pop("category_input")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingRecipe:
        if "template" in d:
            raise ManifestError("malformed training recipe: 'template' is never serialised")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ManifestError(f"malformed training recipe: {exc}") from exc

    def estimator_class(self) -> type:
        if self.estimator == CLONE:
            return type(self._template())
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

    def _template(self) -> Any:
        if self.template is None:
            raise ManifestError(
                "the recipe of an imported model refits a clone of its artifact; load the "
                "recipe through the registry (ModelRegistry.manifest) so the artifact is bound"
            )
        return self.template.load()

    def build(self, schema: FeatureSchema) -> Any:
        """Return the unfitted estimator: the recipe's Pipeline (one-hot for categories,
        optional scaling, estimator), or for a clone recipe the artifact's clone."""
        if self.estimator == CLONE:
            from sklearn.base import clone

            est = clone(self._template())
            if self.seed is not None:
                keys = [k for k in est.get_params(deep=True)
                        if k.rsplit("__", 1)[-1] in ("random_state", "seed")]
                if keys:
                    est.set_params(**{k: self.seed for k in keys})
            return est
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
    ) -> Any:
        """Build and fit the estimator on ``X`` (schema columns) and labels ``y``.

        Without ``sample_weight``, the recipe's ``sample_weight`` column of ``X`` is used.
        """
        pipe = self.build(schema)
        frame = X.loc[:, schema.names].copy()
        for name in schema.categorical:
            if self.category_input == "category":
                cats = list(schema[name].categories or ())
                frame[name] = pd.Categorical(frame[name].astype(str), categories=cats)
            else:
                frame[name] = frame[name].astype(str)
        if sample_weight is None and self.sample_weight is not None:
            if self.sample_weight not in X.columns:
                raise ManifestError(
                    f"training data lacks the sample-weight column {self.sample_weight!r}"
                )
            sample_weight = X[self.sample_weight].to_numpy(dtype=float)
        kwargs = {}
        if sample_weight is not None:
            last = pipe.steps[-1][0] if isinstance(pipe, Pipeline) else None
            kwargs = {f"{last}__sample_weight" if last else "sample_weight": sample_weight}
        return pipe.fit(frame, np.asarray(y), **kwargs)
