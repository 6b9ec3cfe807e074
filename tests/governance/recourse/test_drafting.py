"""Action sets users write: the JSON Schema of the format, drafts inferred from data and a
schema with every inferred choice marked for review, and checks against a model."""

import json

import jsonschema
import pandas as pd
import pytest

from governance.exceptions import ActionSetError
from governance.recourse.action_set import BUNDLED, JSON_SCHEMA, ActionSet
from governance.recourse.constraints import LinearConstraint
from governance.recourse.drafting import (
    REVIEW,
    check_action_set,
    draft_action_set,
    read_action_set,
    schema_errors,
)
from governance.registry.schema import FeatureSchema, FeatureSpec

SCHEMA = FeatureSchema(
    (
        FeatureSpec("age", "int", observed_min=19, observed_max=75),
        FeatureSpec("income", "float", 0, 250_000),
        FeatureSpec("months_low", "int"),
        FeatureSpec("months_high", "int"),
        FeatureSpec("home", "category", categories=("RENT", "OWN", "FREE")),
        FeatureSpec("cosigner", "bool", 0, 1),
        FeatureSpec("sex", "category", categories=("F", "M")),
    )
)
ROWS = pd.DataFrame(
    {
        "age": [19, 40, 75],
        "income": [1_000.0, 52_500.0, 99_000.0],
        "months_low": [0, 2, 6],
        "months_high": [1, 0, 3],
        "home": ["RENT", "OWN", "FREE"],
        "cosigner": [0, 1, 0],
        "sex": ["F", "M", "F"],
    }
)


def test_the_json_schema_is_valid_and_every_bundled_action_set_follows_it():
    schema = json.loads(JSON_SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    files = sorted(BUNDLED.glob("*.json"))
    assert files
    for path in files:
        d = json.loads(path.read_text())
        assert schema_errors(d) == [], path.name
        ActionSet.from_dict(d)  # and the format's own checks agree


def test_every_constraint_type_written_by_the_library_follows_the_schema():
    A = draft_action_set(ROWS, SCHEMA, immutable=["sex"])
    A.add_constraint(LinearConstraint(["months_low", "months_high"], [1, 1], 6))
    assert schema_errors(A.to_dict()) == []


def test_structural_mistakes_are_named_by_their_place_in_the_file(tmp_path):
    d = draft_action_set(ROWS, SCHEMA).to_dict()
    d["features"][2]["step_direction"] = 2
    d["constraints"] = [{"type": "linear", "names": ["months_low", "months_high"],
                         "coefficients": [1, 1]}]
    errors = schema_errors(d)
    assert any(e.startswith("constraints/0") for e in errors)
    assert any(e.startswith("features/2/step_direction") for e in errors)
    path = tmp_path / "a.json"
    path.write_text(json.dumps(d))
    with pytest.raises(ActionSetError, match=r"breaks the format at constraints/0.*more"):
        read_action_set(path)


def test_a_draft_infers_bounds_steps_and_directions_and_marks_each_for_review():
    A = draft_action_set(ROWS, SCHEMA, immutable=["sex"], decrease_only=["months_low"],
                         source="ref.csv")
    assert A.version == "draft" and "DRAFT" in A.description
    assert not A["sex"].actionable and REVIEW not in A["sex"].note
    # observed range from the data, marked; declared hard bounds from the schema, not marked
    assert (A["age"].lb, A["age"].ub) == (19, 75)
    assert f"{REVIEW} bounds [19, 75] are the range seen in 3 rows of ref.csv" in A["age"].note
    assert (A["income"].lb, A["income"].ub) == (0, 250_000)
    assert "schema's hard bounds" in A["income"].note
    assert f"{REVIEW} grid step 1000" in A["income"].note and A["income"].grid_step == 1000
    # the name counts time forward: +1, marked; the user's word: -1, not marked
    assert A["age"].step_direction == 1
    assert f"{REVIEW} can only increase" in A["age"].note
    assert A["months_low"].step_direction == -1 and "as asked" in A["months_low"].note
    assert A["months_high"].step_direction == 0
    assert f"{REVIEW} either direction" in A["months_high"].note
    assert f"{REVIEW} may move to any of its 3 categories" in A["home"].note
    assert schema_errors(A.to_dict()) == []


def test_a_draft_refuses_names_the_model_does_not_have_or_lists_twice():
    with pytest.raises(ActionSetError, match="not features of the model: salary"):
        draft_action_set(ROWS, SCHEMA, immutable=["salary"])
    with pytest.raises(ActionSetError, match="age listed under two choices"):
        draft_action_set(ROWS, SCHEMA, immutable=["age"], increase_only=["age"])


def test_check_says_what_each_feature_allows_and_what_awaits_review(tmp_path):
    A = draft_action_set(ROWS, SCHEMA, immutable=["sex", "age"])
    A.add_constraint(LinearConstraint(["months_low", "months_high"], [1, 1], 6))
    del A._elements["cosigner"]  # a model feature the file leaves out is immutable
    result = check_action_set(A, SCHEMA, ROWS)
    rows = result.features.set_index("feature")
    assert rows.loc["income", "allows"] == "0 to 250000, either way, step 1000"
    assert rows.loc["home", "allows"] == "any of 3 categories (RENT, OWN, FREE)"
    assert rows.loc["sex", "allows"] == "immutable"
    assert rows.loc["cosigner", "allows"] == "immutable (not in the action set)"
    assert rows.loc["months_low", "constraints"] == 1
    assert result.constraints == [
        "`months_low` + `months_high` must be at most 6 after any action."
    ]
    assert "version (still 'draft')" in result.pending_review
    assert "income" in result.pending_review and "sex" not in result.pending_review
    assert len(result.violations) == 1  # months 6 + 3 > 6 in the third row
    assert result.to_dict()["violations_by_item"] == {
        "linear(months_low, months_high)": 1
    }


def test_check_refuses_an_action_set_that_does_not_fit_the_model():
    A = draft_action_set(ROWS, SCHEMA)
    other = FeatureSchema(tuple(s for s in SCHEMA if s.name != "income"))
    with pytest.raises(ActionSetError, match="'income' is not in the model schema"):
        check_action_set(A, other)


def test_a_wide_int_range_gets_a_coarser_grid_marked_for_review():
    schema = FeatureSchema((FeatureSpec("amount", "int"), FeatureSpec("months", "int")))
    rows = pd.DataFrame({"amount": [250, 9_000, 18_424], "months": [4, 24, 72]})
    A = draft_action_set(rows, schema)
    assert A["amount"].grid_step == 100
    assert f"{REVIEW} grid step 100" in A["amount"].note
    assert A["months"].grid_step == 1 and "grid step" not in A["months"].note
