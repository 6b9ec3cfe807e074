"""Codebooks: words for features and category codes, attached to a version, never computed on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from governance.data.real import shared_data_dir
from governance.exceptions import ManifestError, UnknownModelVersion
from governance.registry.codebook import Codebook, load_codebook, read_codebook, save_codebook
from governance.registry.model_registry import ModelRegistry
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"duration": rng.integers(6, 48, 200), "housing": rng.choice(["A151", "A152"], 200)}
    )
    y = (X["duration"] < 24).astype(int)
    schema = FeatureSchema.from_frame(X)
    recipe = TrainingRecipe("logistic_regression", {}, seed=0)
    reg = ModelRegistry(tmp_path / "registry")
    reg.register("credit", "v1", recipe.fit(schema, X, y), schema, recipe)
    return reg


def test_labels_codes_and_names_and_leaves_the_rest_as_is():
    book = Codebook({"housing": "Housing"}, {"housing": {"A151": "rent", "1": "one"}})
    assert book.feature("housing") == "Housing" and book.feature("duration") == "duration"
    assert book.show_value("housing", "A151") == "rent (A151)"
    assert book.value_label("housing", 1.0) == "one"  # 1, 1.0 and "1" are one code
    assert book.show_value("housing", "A999") == "A999"
    assert book.value_label("housing", None) is None
    assert not Codebook() and book


def test_json_round_trip_and_malformed_books_are_refused(tmp_path):
    book = Codebook({"a": "A"}, {"a": {"x": "ex"}})
    path = tmp_path / "book.json"
    path.write_text(json.dumps(book.to_dict()))
    assert read_codebook(path) == book
    path.write_text(json.dumps({"values": {"a": "not a mapping"}}))
    with pytest.raises(ManifestError, match="holds 'features'"):
        read_codebook(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read codebook"):
        read_codebook(path)


def test_attached_to_a_version_and_checked_against_its_features(registry, tmp_path):
    assert not load_codebook(registry, "credit", "v1")
    book = Codebook({"housing": "Housing"}, {"housing": {"A151": "rent"}})
    save_codebook(registry, "credit", "v1", book)
    assert load_codebook(registry.root, "credit", "v1") == book
    manifest = registry.manifest("credit", "v1")  # the manifest and artifact are untouched
    assert registry.load("credit", "v1").sha256 == manifest.artifact_sha256
    with pytest.raises(ManifestError, match="does not have: age"):
        save_codebook(registry, "credit", "v1", Codebook({"age": "Age"}))
    with pytest.raises(UnknownModelVersion):
        save_codebook(registry, "credit", "v9", book)


def test_the_german_credit_codebook_reads_as_words():
    path = shared_data_dir() / "german_credit" / "german_codebook.csv"
    if not path.exists():
        pytest.skip(f"{path} is absent (real data sets live in ../shared/data)")
    book = read_codebook(path)
    assert book.show_value("savings_account_bonds", "A61") == "< 100 DM (A61)"
    assert book.show_value("checking_account_status", "A14") == "no checking account (A14)"
    assert "..." not in book.value_label("checking_account_status", "A11")
