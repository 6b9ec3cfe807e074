"""Registry: versions are immutable, hash-pinned, and only trusted types are ever loaded."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from governance.exceptions import (
    ArtifactHashMismatch,
    InvalidName,
    ManifestError,
    UnknownModelVersion,
    UntrustedArtifact,
)
from governance.registry.model_registry import ModelRegistry, TrainingData, check_name, load_trusted
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.normal(50, 10, 300), "region": rng.choice(["n", "s"], 300)})
    y = (X["income"] + (X["region"] == "n") * 5 + rng.normal(0, 5, 300) > 52).astype(int)
    schema = FeatureSchema.from_frame(X)
    recipe = TrainingRecipe("logistic_regression", {"C": 1.0}, seed=3)
    return X, y, schema, recipe, recipe.fit(schema, X, y)


def test_register_load_round_trip_keeps_predictions_and_provenance(tmp_path, fitted):
    X, y, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    data = tmp_path / "train.parquet"
    X.assign(y=y).to_parquet(data)
    manifest = reg.register(
        "credit", "v1", est, schema, recipe, threshold=0.6, metrics={"auc": 0.8},
        training_data=TrainingData(str(data), "abc", len(X), "y"),
    )
    model = reg.load("credit", "v1")
    np.testing.assert_allclose(model.score(X), est.predict_proba(X)[:, 1])
    assert model.threshold == 0.6 and model.sha256 == manifest.artifact_sha256
    on_disk = json.loads((tmp_path / "credit" / "v1" / "manifest.json").read_text())
    assert on_disk["recipe"] == {"estimator": "logistic_regression", "params": {"C": 1.0},
                                 "seed": 3, "scale_numeric": None, "label": "label"}
    assert on_disk["features"][1] == {"name": "region", "dtype": "category",
                                      "categories": ["n", "s"]}
    assert reg.versions("credit") == ["v1"] and reg.names() == ["credit"]


def test_versions_are_immutable(tmp_path, fitted):
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    reg.register("credit", "v1", est, schema, recipe)
    with pytest.raises(ManifestError, match="already exists"):
        reg.register("credit", "v1", est, schema, recipe)


def test_registry_keeps_no_deployment_state(tmp_path, fitted):
    """Which version is deployed lives in the ledger alone (governance.store.deployments): the
    registry writes no deployments.json and no deployed_at, and an older manifest that has
    one still loads."""
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    reg.register("credit", "v1", est, schema, recipe)
    assert not hasattr(reg, "deploy") and not hasattr(reg, "deployed_version")
    path = tmp_path / "credit" / "v1" / "manifest.json"
    data = json.loads(path.read_text())
    assert "deployed_at" not in data
    data["deployed_at"] = "2026-01-01T00:00:00+00:00"
    path.write_text(json.dumps(data))
    assert reg.manifest("credit", "v1").version == "v1"
    assert not list(tmp_path.rglob("deployments.json"))


def test_tampered_artifact_is_refused(tmp_path, fitted):
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    reg.register("credit", "v1", est, schema, recipe)
    artifact = tmp_path / "credit" / "v1" / "model.skops"
    blob = bytearray(artifact.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    artifact.write_bytes(bytes(blob))
    with pytest.raises(ArtifactHashMismatch, match="refusing to load"):
        reg.load("credit", "v1")


def test_untrusted_types_are_refused_before_loading(tmp_path):
    import os

    hostile = Pipeline([("f", FunctionTransformer(os.system))])
    path = tmp_path / "hostile.skops"
    sio.dump(hostile, path)
    with pytest.raises(UntrustedArtifact, match="posix.system|os.system"):
        load_trusted(path)


def test_corrupt_artifact_gives_a_clear_error(tmp_path):
    path = tmp_path / "broken.skops"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(UntrustedArtifact, match="not a readable skops file"):
        load_trusted(path)


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".", "..", "", "x" * 65, "-lead", "a b"])
def test_names_cannot_escape_the_registry(tmp_path, bad):
    with pytest.raises(InvalidName):
        check_name(bad)
    with pytest.raises(InvalidName):
        ModelRegistry(tmp_path).manifest(bad, "v1")


def test_unknown_version_names_the_known_ones(tmp_path, fitted):
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    reg.register("credit", "v1", est, schema, recipe)
    with pytest.raises(UnknownModelVersion, match="'v7' not in registry .*known: v1"):
        reg.load("credit", "v7")


def test_malformed_manifest_is_reported(tmp_path, fitted):
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    reg.register("credit", "v1", est, schema, recipe)
    path = tmp_path / "credit" / "v1" / "manifest.json"
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        reg.manifest("credit", "v1")
    path.write_text(json.dumps({"format": "other/9"}))
    with pytest.raises(ManifestError, match="format 'other/9' not supported"):
        reg.manifest("credit", "v1")


def test_register_checks_decision_rule(tmp_path, fitted):
    _, _, schema, recipe, est = fitted
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ManifestError, match="favourable class 'yes'"):
        reg.register("credit", "v1", est, schema, recipe, favourable_class="yes")
    with pytest.raises(ManifestError, match="threshold 1.5"):
        reg.register("credit", "v1", est, schema, recipe, threshold=1.5)


def test_training_data_hash_is_checked(tmp_path, fitted):
    from governance.hashing import sha256_file

    X, y, schema, recipe, est = fitted
    data = tmp_path / "train.parquet"
    X.assign(label=y).to_parquet(data)
    reg = ModelRegistry(tmp_path / "reg")
    reg.register("credit", "v1", est, schema, recipe,
                 training_data=TrainingData(str(data), sha256_file(data), len(X), "label"))
    assert len(reg.training_frame("credit", "v1")) == len(X)
    X.head(5).to_parquet(data)
    with pytest.raises(ArtifactHashMismatch, match="training data"):
        reg.training_frame("credit", "v1")
