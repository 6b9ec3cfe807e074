"""The tree parser per family: the parsed trees reproduce the model's scores, boxes bound them,
and families it cannot parse say why."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from governance.registry.exact_paths import exact_paths
from governance.registry.forests import why_not_parsed
from governance.registry.model import DecisionModel
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.trees import model_structure

lightgbm = pytest.importorskip("lightgbm")
xgboost = pytest.importorskip("xgboost")

SCHEMA = FeatureSchema(
    (
        FeatureSpec("a", "category", categories=tuple("pqrstu")),
        FeatureSpec("b", "float"),
        FeatureSpec("c", "category", categories=tuple("xyz")),
        FeatureSpec("d", "int"),
    )
)
NUMERIC = FeatureSchema((SCHEMA["b"], SCHEMA["d"]))


def _data(n=400):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.choice(list("pqrstu"), n), "b": rng.normal(size=n).round(2),
                      "c": rng.choice(list("xyz"), n), "d": rng.integers(0, 10, n)})
    y = (X["a"].isin(["p", "r", "t"]) ^ (X["b"] > 0) ^ (X["c"] == "y")).astype(int)
    return X, y


def _categorical(X):
    out = X.copy()
    out["a"] = pd.Categorical(X["a"], categories=list("pqrstu"))
    out["c"] = pd.Categorical(X["c"], categories=list("xyz"))
    return out


def _ct(encoder):
    return ColumnTransformer([("cat", encoder, ["a", "c"]), ("num", "passthrough", ["b", "d"])])


@functools.cache  # one fit per family for the whole module
def _case(name):
    X, y = _data()
    Xc = _categorical(X)
    if name == "hgb_from_dtype":
        est = HistGradientBoostingClassifier(max_iter=30, categorical_features="from_dtype",
                                             random_state=0).fit(Xc, y)
        return DecisionModel(est, SCHEMA, 1, 0.5, category_input="category"), X
    if name == "ordinal_hgb":
        est = Pipeline([("pre", _ct(OrdinalEncoder())), ("model", HistGradientBoostingClassifier(
            max_iter=30, categorical_features=[0, 1], random_state=0))]).fit(X, y)
        return DecisionModel(est, SCHEMA), X
    if name == "ordinal_forest":
        est = Pipeline([("pre", _ct(OrdinalEncoder())),
                        ("model", RandomForestClassifier(20, max_depth=6, random_state=0))])
        return DecisionModel(est.fit(X, y), SCHEMA), X
    if name == "lightgbm_categorical":
        est = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0).fit(Xc, y)
        return DecisionModel(est, SCHEMA, category_input="category"), X
    if name == "lightgbm_numeric":
        est = lightgbm.LGBMClassifier(n_estimators=30, verbose=-1, random_state=0)
        return DecisionModel(est.fit(X[["b", "d"]], y), NUMERIC), X
    if name == "xgboost_numeric":
        est = xgboost.XGBClassifier(n_estimators=30, max_depth=4, random_state=0)
        return DecisionModel(est.fit(X[["b", "d"]], y), NUMERIC), X
    if name == "xgboost_one_hot":
        est = Pipeline([("pre", _ct(OneHotEncoder(handle_unknown="ignore", sparse_output=False))),
                        ("model", xgboost.XGBClassifier(n_estimators=30, max_depth=4))])
        return DecisionModel(est.fit(X, y), SCHEMA), X
    raise KeyError(name)


# family -> (largest gap between the parsed trees' score and the model's, replay bit for bit)
EXPECTED = {
    "hgb_from_dtype": (1e-12, "exact"),
    "ordinal_hgb": (1e-12, "exact"),
    "ordinal_forest": (0.0, "exact"),
    "lightgbm_categorical": (1e-12, "predict_proba"),
    "lightgbm_numeric": (1e-12, "predict_proba"),
    "xgboost_numeric": (1e-6, "predict_proba"),  # XGBoost adds float32 leaves in float32
    "xgboost_one_hot": (1e-6, "predict_proba"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parsed_trees_reproduce_every_score_and_report_exact_paths(name):
    model, X = _case(name)
    gap, replay = EXPECTED[name]
    structure = model_structure(model)
    assert structure.kind == "tree" and structure.bound is not None, why_not_parsed(model)
    M = model.matrix(X)
    mine = structure.bound.upper(*structure.bound.box(M, M))
    assert np.max(np.abs(mine - model.score(M))) <= gap
    report = exact_paths(model, X)
    assert report["verification"] == "exact"
    assert report["stability_replay"] == replay


@pytest.mark.parametrize("name", ["hgb_from_dtype", "ordinal_hgb", "lightgbm_categorical"])
def test_a_box_over_category_codes_bounds_every_point_inside_it(name):
    model, X = _case(name)
    bound = model_structure(model).bound
    M = model.matrix(X.iloc[:20])
    lo, hi = M.copy(), M.copy()
    lo[:, 0], hi[:, 0] = 1, 4  # a: codes q..t
    lo[:, 2], hi[:, 2] = 0, 2  # c: every code
    upper = bound.upper(*bound.box(lo, hi))
    best = np.full(len(M), -np.inf)
    for a, c in itertools.product(range(1, 5), range(3)):
        P = M.copy()
        P[:, 0], P[:, 2] = a, c
        best = np.maximum(best, model.score(P))
    assert np.all(upper >= best - bound.tol)


def test_ordinal_encoded_logistic_regression_is_linear_in_the_codes():
    X, y = _data()
    est = Pipeline([("pre", _ct(OrdinalEncoder())), ("model", LogisticRegression())]).fit(X, y)
    model = DecisionModel(est, SCHEMA)
    s = model_structure(model)
    assert s.kind == "linear" and set(s.category_w) == {0, 2}
    M = model.matrix(X)
    p = model.score(M)
    np.testing.assert_allclose(s.logit(M), np.log(p) - np.log1p(-p), rtol=1e-9, atol=1e-9)


def test_families_the_parser_does_not_read_say_why():
    X, y = _data()
    Xc = _categorical(X)
    xgb_cat = xgboost.XGBClassifier(n_estimators=5, enable_categorical=True, tree_method="hist",
                                    max_cat_to_onehot=1).fit(Xc, y)
    model = DecisionModel(xgb_cat, SCHEMA, category_input="category")
    assert why_not_parsed(model) == "XGBClassifier: categorical splits are not parsed"
    assert exact_paths(model, X)["verification"] == "sampling"
    one_hot_drop = Pipeline([("pre", _ct(OneHotEncoder(drop="first"))),
                             ("model", RandomForestClassifier(5, random_state=0))]).fit(X, y)
    assert why_not_parsed(DecisionModel(one_hot_drop, SCHEMA)).startswith(
        "preprocessing not recognised")
