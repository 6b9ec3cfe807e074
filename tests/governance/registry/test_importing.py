"""Importing a model fitted elsewhere: safe loading, schema, scoring check, clone recipe."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from governance.exceptions import ImportRefused, ManifestError, MissingTrainingData
from governance.registry.importing import NEEDS_TRAINING, REVIEW_RANGE, import_fitted
from governance.registry.model_registry import ModelRegistry


def double(x):
    """A user's own function: skops cannot know it is safe."""
    return x * 2


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50, 15, n).round(1),
            "accounts": rng.integers(0, 8, n),
            "home": rng.choice(["RENT", "OWN", "FREE"], n),
            "w": rng.uniform(0.5, 2.0, n).round(3),
        }
    )
    z = 0.08 * (frame["income"] - 50) - 0.3 * frame["accounts"] + (frame["home"] == "OWN")
    frame["y"] = (z + rng.normal(0, 1, n) > 0).astype(int)
    return frame


def _pipeline(final=None):
    pre = ColumnTransformer(
        [("num", StandardScaler(), ["income", "accounts"]),
         ("cat", OneHotEncoder(handle_unknown="ignore"), ["home"])]
    )
    final = final if final is not None else LogisticRegression(random_state=0)
    return Pipeline([("pre", pre), ("model", final)])


@pytest.fixture
def files(tmp_path):
    data = _data()
    feats = data[["income", "accounts", "home"]]
    pipe = _pipeline().fit(feats, data["y"])
    sio.dump(pipe, tmp_path / "model.skops")
    data.to_csv(tmp_path / "train.csv", index=False)
    data.iloc[:100].to_parquet(tmp_path / "reference.parquet")
    return tmp_path, pipe, data


def test_import_registers_an_undeployed_version_with_its_schema_and_checks(files):
    tmp, pipe, data = files
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "credit", "v1", tmp / "model.skops",
                           reference=tmp / "reference.parquet", training=tmp / "train.csv",
                           label="y", sample_weight=None, id_column=None)
    m = report.manifest
    # the registry keeps no deployment state (the ledger does); an import writes none
    assert "deployed_at" not in m.to_dict() and not list((tmp / "reg").rglob("deployments.json"))
    assert m.schema["home"].categories == ("FREE", "OWN", "RENT")  # the encoder's own list
    income = m.schema["income"]
    assert (income.min, income.max) == (None, None)  # hard bounds are the user's to declare
    assert income.observed_min == data["income"].iloc[:100].min()
    assert income.review == REVIEW_RANGE and m.schema["home"].review == ""
    assert m.source["format"] == "skops" and m.source["trust_pickle"] is False
    assert m.source["sha256"] == __import__("hashlib").sha256(
        (tmp / "model.skops").read_bytes()).hexdigest()
    assert m.recipe.estimator == "clone" and m.recipe.seed == 0
    assert report.recipe_check["status"] == "reproduced"
    assert report.exact_paths["structure"] == "linear"
    assert report.exact_paths["verification"] == "exact"
    assert report.scored_rows == 100 and report.unavailable == []
    assert m.reference_data.rows == 100 and m.training_data.rows == len(data)
    model = reg.load("credit", "v1")
    np.testing.assert_array_equal(
        model.score(data.iloc[:50]), pipe.predict_proba(data.iloc[:50][model.schema.names])[:, 1]
    )
    # the manifest's record survives a round trip, and the registry binds the clone recipe
    again = reg.manifest("credit", "v1")
    assert again.import_report["recipe_check"]["status"] == "reproduced"
    refit = again.recipe.fit(again.schema, reg.training_frame("credit", "v1"), data["y"])
    np.testing.assert_array_equal(refit.predict_proba(data[again.schema.names]),
                                  pipe.predict_proba(data[again.schema.names]))


def test_pickle_needs_explicit_trust_which_the_manifest_records(files):
    tmp, pipe, _ = files
    (tmp / "model.pkl").write_bytes(pickle.dumps(pipe))
    reg = ModelRegistry(tmp / "reg")
    with pytest.raises(ImportRefused, match="can run any code.*--trust-pickle"):
        import_fitted(reg, "credit", "v1", tmp / "model.pkl", reference=tmp / "reference.parquet")
    assert not reg.path("credit", "v1").exists()
    report = import_fitted(reg, "credit", "v1", tmp / "model.pkl",
                           reference=tmp / "reference.parquet", trust_pickle=True)
    assert report.manifest.source["format"] == "pickle"
    assert report.manifest.source["trust_pickle"] is True
    assert (reg.path("credit", "v1") / "model.skops").exists()  # the registry keeps skops


def test_skops_types_outside_the_allow_list_need_the_users_trust(files):
    tmp, _, data = files
    pre = ColumnTransformer(
        [("num", FunctionTransformer(double), ["income", "accounts"]),
         ("cat", OneHotEncoder(handle_unknown="ignore"), ["home"])]
    )
    pipe = Pipeline([("pre", pre), ("model", LogisticRegression())]).fit(
        data[["income", "accounts", "home"]], data["y"])
    sio.dump(pipe, tmp / "custom.skops")
    reg = ModelRegistry(tmp / "reg")
    name = f"{__name__}.double"
    with pytest.raises(ImportRefused, match=f"outside the allow-list: {name}.*--trust-type"):
        import_fitted(reg, "c", "v1", tmp / "custom.skops", reference=tmp / "reference.parquet")
    report = import_fitted(reg, "c", "v1", tmp / "custom.skops",
                           reference=tmp / "reference.parquet", trusted_types=[name])
    assert report.manifest.trusted_types == (name,)
    assert reg.load("c", "v1").score(data.iloc[:5]).shape == (5,)
    assert report.exact_paths["verification"] == "sampling"
    assert "preprocessing not recognised" in report.exact_paths["reason"]


def test_a_model_that_cannot_score_the_sample_is_refused(files):
    tmp, _, data = files
    strict = _pipeline()
    strict.steps[0][1].transformers[1] = ("cat", OneHotEncoder(handle_unknown="error"), ["home"])
    strict.fit(data[["income", "accounts", "home"]].iloc[:200].replace("FREE", "RENT"),
               data["y"].iloc[:200])
    sio.dump(strict, tmp / "strict.skops")
    reg = ModelRegistry(tmp / "reg")
    with pytest.raises(ImportRefused, match="cannot score the reference sample"):
        import_fitted(reg, "c", "v1", tmp / "strict.skops", reference=data.iloc[:50])
    with pytest.raises(ImportRefused, match="lacks feature.*home"):
        import_fitted(reg, "c", "v1", tmp / "model.skops",
                      reference=data[["income", "accounts"]])
    with pytest.raises(ImportRefused, match="favourable class 'yes'"):
        import_fitted(reg, "c", "v1", tmp / "model.skops", reference=data, favourable="yes")
    assert reg.versions("c") == []


def test_a_refit_that_does_not_reproduce_the_model_is_recorded(files):
    tmp, _, data = files
    forest = _pipeline(RandomForestClassifier(n_estimators=5, random_state=None))
    forest.fit(data[["income", "accounts", "home"]], data["y"])
    sio.dump(forest, tmp / "forest.skops")
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "f", "v1", tmp / "forest.skops", reference=data.iloc[:80],
                           training=data, label="y")
    assert report.recipe_check["status"] == "differs"
    assert report.recipe_check["max_abs_score_difference"] > 0
    assert any("random_state is None" in n for n in report.notes)
    assert report.manifest.recipe.seed is None


def test_without_training_data_retraining_checks_say_what_is_missing(files):
    tmp, _, _ = files
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "credit", "v1", tmp / "model.skops",
                           reference=tmp / "reference.parquet")
    assert report.recipe_check["status"] == "not checked"
    assert report.unavailable == list(NEEDS_TRAINING)
    with pytest.raises(MissingTrainingData, match="--training-data FILE --label COLUMN"):
        reg.training_frame("credit", "v1")
    assert len(reg.fit_frame("credit", "v1")) == 100  # the reference sample fits the cost


def test_sample_weights_and_seed_go_into_the_recipe(files):
    tmp, _, data = files
    pipe = _pipeline(RandomForestClassifier(n_estimators=5, random_state=7))
    pipe.fit(data[["income", "accounts", "home"]], data["y"], model__sample_weight=data["w"])
    sio.dump(pipe, tmp / "weighted.skops")
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "w", "v1", tmp / "weighted.skops", reference=data.iloc[:80],
                           training=data, label="y", sample_weight="w")
    recipe = report.manifest.recipe
    assert (recipe.sample_weight, recipe.seed) == ("w", 7)
    assert report.recipe_check["status"] == "reproduced"
    unweighted = import_fitted(reg, "w", "v2", tmp / "weighted.skops", reference=data.iloc[:80],
                               training=data, label="y")
    assert unweighted.recipe_check["status"] == "differs"


def test_schema_file_sets_hard_bounds_and_clears_the_review_mark(files):
    tmp, _, _ = files
    (tmp / "schema.json").write_text(json.dumps(
        [{"name": "income", "min": 0, "max": 500, "description": "thousands a year"}]
    ))
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "credit", "v1", tmp / "model.skops",
                           reference=tmp / "reference.parquet", schema=tmp / "schema.json")
    income = report.manifest.schema["income"]
    assert (income.min, income.max, income.review) == (0, 500, "")
    assert report.schema_review == ["accounts"]
    (tmp / "bad.json").write_text(json.dumps([{"name": "salary", "min": 0}]))
    with pytest.raises(ManifestError, match="'salary' names no feature"):
        import_fitted(reg, "credit", "v2", tmp / "model.skops",
                      reference=tmp / "reference.parquet", schema=tmp / "bad.json")


def test_an_importer_adds_its_own_source_fields(files):
    tmp, pipe, _ = files
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "credit", "v1", estimator=pipe,
                           reference=tmp / "reference.parquet",
                           source={"registry": "mlflow", "run_id": "abc"})
    src = reg.manifest("credit", "v1").source
    assert src["registry"] == "mlflow" and src["run_id"] == "abc" and src["format"] == "object"
    assert report.manifest.source == src


def test_histogram_boosting_on_pandas_categories_is_scored_and_refit_with_them(files):
    tmp, _, data = files
    X = data[["income", "accounts", "home"]].copy()
    X["home"] = pd.Categorical(X["home"], categories=["RENT", "OWN", "FREE"])
    hgb = HistGradientBoostingClassifier(max_iter=20, categorical_features="from_dtype",
                                         random_state=0).fit(X, data["y"])
    sio.dump(hgb, tmp / "hgb.skops")
    reg = ModelRegistry(tmp / "reg")
    report = import_fitted(reg, "h", "v1", tmp / "hgb.skops", reference=tmp / "train.csv",
                           training=tmp / "train.csv", label="y")
    assert report.manifest.category_input == "category"
    assert report.recipe_check["status"] == "reproduced"
    assert report.exact_paths == {
        "family": "HistGradientBoostingClassifier", "structure": "tree",
        "verification": "exact", "stability_replay": "exact",
        "reason": "threshold cells and the bound reproduce the model's scores; the replay "
                  "is bit for bit",
    }
    model = reg.load("h", "v1")
    np.testing.assert_array_equal(model.score(data), hgb.predict_proba(X)[:, 1])


def test_a_deletion_retrain_refits_the_clone_without_the_subject(files):
    from governance.deletion.retrain import retrain_without

    tmp, _, data = files
    data = data.assign(customer=[f"C{i}" for i in range(len(data))])
    X = data[["income", "accounts", "home"]].copy()
    X["home"] = pd.Categorical(X["home"], categories=["RENT", "OWN", "FREE"])
    hgb = HistGradientBoostingClassifier(max_iter=10, categorical_features="from_dtype",
                                         random_state=0).fit(X, data["y"])
    sio.dump(hgb, tmp / "hgb.skops")
    reg = ModelRegistry(tmp / "reg")
    import_fitted(reg, "h", "v1", tmp / "hgb.skops", reference=data.iloc[:50], training=data,
                  label="y", id_column="customer")
    candidate = retrain_without(reg, "h", "v1", ["C3", "C7"], candidate_version="v1-d1")
    assert candidate.rows_removed == 2
    m = reg.manifest("h", "v1-d1")
    assert (m.recipe.estimator, m.category_input) == ("clone", "category")
    expected = hgb.__class__(**hgb.get_params()).fit(X.drop(index=[3, 7]),
                                                     data["y"].drop(index=[3, 7]))
    np.testing.assert_array_equal(reg.load("h", "v1-d1").score(data),
                                  expected.predict_proba(X)[:, 1])
    # without training data the retrain says what to supply
    import_fitted(reg, "h", "v2", tmp / "hgb.skops", reference=data.iloc[:50])
    with pytest.raises(MissingTrainingData, match="the deletion retrain needs the rows"):
        retrain_without(reg, "h", "v2", ["C3"], candidate_version="v2-d1")
