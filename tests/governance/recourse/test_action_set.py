"""ActionSet: defaults from data, editing by name, validation of rows, JSON files and errors."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from governance.exceptions import ActionSetError
from governance.recourse.action_set import BUNDLED, FORMAT, ActionElement, ActionSet
from governance.recourse.constraints import DirectionalLinkage, OneHotEncoding, ThermometerEncoding
from governance.registry.schema import FeatureSchema, FeatureSpec

SHIPPED = BUNDLED


def _frame():
    return pd.DataFrame(
        {
            "age": [25, 40, 61],
            "income": [1520.5, 3000.25, 8000.0],
            "owns": [0, 1, 1],
            "purpose": ["car", "home", "car"],
        }
    )


def _schema():
    return FeatureSchema(
        (
            FeatureSpec("age", "int", 18, 90),
            FeatureSpec("income", "float", 0, 1e6),
            FeatureSpec("owns", "bool", 0, 1),
            FeatureSpec("purpose", "category", categories=("car", "home", "other")),
        )
    )


def test_from_data_infers_reachml_defaults():
    A = ActionSet.from_data(_frame(), _schema(), name="toy", version="3")
    assert A.names == ["age", "income", "owns", "purpose"]
    df = A.df.set_index("name")
    assert df.loc["age", ["type", "lb", "ub"]].tolist() == ["int", 25.0, 61.0]
    assert df.loc["income", ["type", "lb", "ub", "step_size"]].tolist() == [
        "float",
        1520.5,
        8000.0,
        10.0,
    ]
    assert df.loc["owns", ["type", "lb", "ub"]].tolist() == ["bool", 0.0, 1.0]
    assert df.loc["purpose", ["type", "lb", "ub"]].tolist() == ["category", 0.0, 2.0]
    assert A["purpose"].categories == ("car", "home", "other")
    assert df["actionable"].all() and (df["step_direction"] == 0).all()
    assert A.version == "3" and A.name == "toy"


def test_from_data_without_schema_infers_types_from_values():
    A = ActionSet.from_data(pd.DataFrame({"n": [1, 2, 5], "f": [0.5, 1.0, 2.0], "b": [0, 1, 0]}))
    assert [e.type for e in A] == ["int", "float", "bool"]


def test_edit_by_name_and_by_slice():
    A = ActionSet.from_data(_frame(), _schema())
    A["age"].actionable = False
    A[["income", "owns"]].step_direction = 1
    A[["income", "owns"]].step_ub = [500.0, None]
    assert A["age"].actionable is False
    assert A[["income", "owns"]].step_direction == [1, 1]
    assert A["income"].step_ub == 500.0 and A["owns"].step_ub is None
    assert A[1:3].name == ["income", "owns"]
    assert A[0].name == "age"
    with pytest.raises(ActionSetError, match="got 3 values for 'step_lb'; expected 1 or 2"):
        A[["income", "owns"]].step_lb = [-1.0, -2.0, -3.0]
    with pytest.raises(ActionSetError, match="feature 'nope' not in action set"):
        A["nope"]


def test_action_bounds_follow_reachml():
    el = ActionElement("x", "int", lb=0, ub=10, step_direction=1, step_ub=3)
    lb, ub = el.action_bounds(np.array([2.0, 9.0, 12.0]))
    assert lb.tolist() == [0.0, 0.0, 0.0]
    assert ub.tolist() == [3.0, 1.0, 0.0]  # at 12 (out of bounds) the person may stay
    el = ActionElement("x", "float", lb=0, ub=10, step_lb=-2.5)
    lb, ub = el.action_bounds(np.array([1.0, 6.0]))
    assert lb.tolist() == [-1.0, -2.5] and ub.tolist() == [9.0, 4.0]
    lb, ub = ActionElement("x", "int", lb=0, ub=5, actionable=False).action_bounds(3.0)
    assert (float(lb), float(ub)) == (0.0, 0.0)


def test_validate_is_empty_for_valid_rows():
    A = ActionSet.from_data(_frame(), _schema())
    out = A.validate(_frame())
    assert out.empty and list(out.columns) == ["row", "item", "kind", "reason"]


def test_validate_lists_planted_violations():
    A = ActionSet(
        [
            ActionElement("age", "int", lb=18, ub=90, actionable=False),
            ActionElement("n", "int", lb=0, ub=10),
            ActionElement("a", "bool"),
            ActionElement("b", "bool"),
            ActionElement("u25", "bool"),
            ActionElement("u50", "bool"),
            ActionElement("cat", "category", categories=("x", "y")),
        ],
        [OneHotEncoding(["a", "b"]), ThermometerEncoding(["u25", "u50"])],
    )
    X = pd.DataFrame(
        {
            "age": [10, 30, 30, 30, 30],  # 10 is out of bounds, but age is immutable
            "n": [3, 11, 2.5, np.nan, 4],
            "a": [1, 0, 1, 1, 1],
            "b": [0, 1, 1, 0, 0],
            "u25": [1, 1, 1, 0, 1],
            "u50": [0, 0, 1, 1, 0],
            "cat": ["x", "y", "x", "x", "z"],
        }
    )
    out = A.validate(X)
    got = set(map(tuple, out[["row", "item", "kind"]].to_numpy().tolist()))
    assert got == {
        (1, "n", "bound"),
        (2, "n", "type"),
        (2, "one_hot(a, b)", "constraint"),
        (3, "n", "value"),
        (3, "thermometer(u25, u50)", "constraint"),
        (4, "cat", "value"),  # unknown label 'z'
    }
    assert out.loc[out["item"] == "n", "reason"].tolist()[0] == "value 11 is above ub 10"


def test_validate_accepts_matrix_in_set_order_and_category_codes():
    A = ActionSet.from_data(_frame(), _schema())
    M = np.array([[30, 2000.0, 1, 1], [30, 2000.0, 1, 5]])
    out = A.validate(M)
    assert out[["row", "item", "kind"]].values.tolist() == [[1, "purpose", "type"]]
    with pytest.raises(ActionSetError, match="4 columns in action-set order"):
        A.validate(np.zeros((2, 3)))
    with pytest.raises(ActionSetError, match="lacks action-set feature"):
        A.validate(_frame().drop(columns="age"))


def test_validate_skips_bounds_of_widened_linkage_targets():
    A = ActionSet(
        [
            ActionElement("years", "int", lb=0, ub=5, step_direction=1),
            ActionElement("age", "int", lb=18, ub=90),
        ],
        [DirectionalLinkage(["years", "age"])],
    )
    assert A.validate(np.array([[2, 91.0]])).empty  # reached 91 through the link
    A.drop_constraint(0)
    A.add_constraint(DirectionalLinkage(["years", "age"], keep_bounds=True))
    assert A.validate(np.array([[2, 91.0]]))["kind"].tolist() == ["bound"]


def test_json_round_trip_and_hash(tmp_path):
    A = ActionSet.from_data(_frame(), _schema(), name="toy", version="7", description="d")
    A["owns"].step_direction = 1
    A["income"].note = "only up"
    A.add_constraint(DirectionalLinkage(["owns", "age"], scales=[1.0, 2.0]))
    path = A.to_json(tmp_path / "toy.json")
    B = ActionSet.from_json(path)
    assert B == A
    assert B.sha256 == A.sha256 and len(A.sha256) == 64
    assert json.loads(path.read_text())["format"] == FORMAT
    B["income"].ub = 9000.0
    assert B.sha256 != A.sha256


def test_unbounded_values_are_null_in_json():
    A = ActionSet([ActionElement("x", "float")])
    d = A.to_dict()["features"][0]
    assert d["lb"] is None and d["ub"] is None
    assert ActionSet.from_dict(A.to_dict())["x"].lb == -math.inf


SHIPPED_NAMES = ["german_credit.json", "givemecredit.json", "heloc.json", "synthetic_lending.json"]


def test_every_shipped_action_set_is_tested():
    assert sorted(p.name for p in SHIPPED.glob("*.json")) == SHIPPED_NAMES


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_action_sets_load_and_round_trip(name, tmp_path):
    path = SHIPPED / name
    assert path.exists(), f"{name} is not in this checkout"
    A = ActionSet.from_json(path)
    assert A.version and A.name
    assert all(el.note for el in A)
    B = ActionSet.from_json(A.to_json(tmp_path / name))
    assert B == A


def test_synthetic_action_set_matches_the_synthetic_schema():
    from governance.data.synthetic import SYNTHETIC_SCHEMA, generate_population

    A = ActionSet.from_json(SHIPPED / "synthetic_lending.json")
    A.check_schema(SYNTHETIC_SCHEMA)
    assert A.names == SYNTHETIC_SCHEMA.names
    immutable = {e.name for e in A if not e.actionable}
    assert {"age", "delinquencies_2y", "public_records", "home_ownership", "loan_purpose",
            "total_accounts", "credit_history_years"} <= immutable
    assert A["employment_years"].step_direction == 1 and A["employment_years"].step_ub == 2
    assert A["annual_income"].step_direction == 1 and A["annual_income"].grid_step == 1000
    for down in ("debt_to_income", "revolving_utilization", "recent_inquiries", "loan_amount"):
        assert A[down].step_direction == -1
    assert A.validate(generate_population(500, seed=3)).empty


def test_check_schema_rejects_unknown_features_and_category_mismatch():
    A = ActionSet.from_data(_frame(), _schema())
    other = FeatureSchema(
        (
            FeatureSpec("age", "int"),
            FeatureSpec("income", "float"),
            FeatureSpec("owns", "bool"),
            FeatureSpec("purpose", "category", categories=("car", "home")),
        )
    )
    with pytest.raises(ActionSetError, match="categories .* differ from the schema's"):
        A.check_schema(other)
    with pytest.raises(ActionSetError, match="'purpose' is not in the model schema"):
        A.check_schema(FeatureSchema(other.features[:3]))


def _doc(features=None, constraints=None, **top):
    d = {
        "format": FORMAT,
        "name": "t",
        "version": "1",
        "features": features
        or [
            {"name": "s", "type": "int", "actionable": True, "lb": 0, "ub": 5},
            {"name": "t", "type": "int", "actionable": False, "lb": 0, "ub": 5},
        ],
        "constraints": constraints or [],
    }
    d.update(top)
    return d


@pytest.mark.parametrize(
    "doc, match",
    [
        (_doc(format="other/1"), "expected 'governance.action_set/1'"),
        (_doc(extra=1), "unknown field"),
        ({**_doc(), "features": []}, "non-empty 'features'"),
        (_doc(features=[{"name": "s", "type": "text"}]), "type 'text'"),
        (_doc(features=[{"name": "s", "type": "int", "lb": 5, "ub": 1}]), "lb 5 must be <= ub 1"),
        (_doc(features=[{"name": "s", "type": "int", "step_lb": 1}]), "step_lb must be <= 0"),
        (_doc(features=[{"name": "s", "type": "int", "step_size": 0.5}]), "integer step_size"),
        (_doc(features=[{"name": "s", "type": "int", "step_direction": 2}]), "step_direction"),
        (_doc(features=[{"name": "s", "type": "int", "colour": 1}]), "unknown field"),
        (_doc(features=[{"type": "int"}]), "missing 'name'"),
        (_doc(features=[{"name": "s", "type": "category"}]), "non-empty 'categories'"),
        (_doc(features=[{"name": "s", "type": "bool", "ub": 2}]), "bounds within \\[0, 1\\]"),
        (
            _doc(features=[{"name": "s", "type": "int"}, {"name": "s", "type": "int"}]),
            "appears twice",
        ),
        (
            _doc(constraints=[{"type": "directional_linkage", "names": ["s", "zz"]}]),
            "unknown feature",
        ),
        (
            _doc(constraints=[{"type": "directional_linkage", "names": ["t", "s"]}]),
            "source 't' must be actionable",
        ),
        (
            _doc(
                features=[
                    {"name": "s", "type": "int", "lb": 0, "ub": 5},
                    {"name": "t", "type": "int", "lb": 0, "ub": 5},
                ],
                constraints=[
                    {"type": "directional_linkage", "names": ["s", "t"]},
                    {"type": "directional_linkage", "names": ["t", "s"]},
                ],
            ),
            "circular linkage",
        ),
        (
            _doc(
                constraints=[
                    {"type": "directional_linkage", "names": ["s", "t"]},
                    {"type": "directional_linkage", "names": ["s", "t"]},
                ]
            ),
            "already in the action set",
        ),
    ],
)
def test_malformed_files_raise_naming_the_value(doc, match, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ActionSetError, match=match):
        ActionSet.from_json(path)


def test_invalid_json_file_raises(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(ActionSetError, match="not valid JSON"):
        ActionSet.from_json(path)


def test_check_catches_edits_that_break_a_constraint():
    A = ActionSet.from_data(_frame(), _schema())
    A.add_constraint(DirectionalLinkage(["age", "income"]))
    A["age"].actionable = False
    with pytest.raises(ActionSetError, match="source 'age' must be actionable"):
        A.check()


def test_partition_groups_constrained_features():
    A = ActionSet(
        [ActionElement(n, "bool") for n in "abcde"],
        [OneHotEncoding(["a", "c"]), DirectionalLinkage(["c", "e"])],
    )
    A["b"].actionable = False
    assert A.partition == [["a", "c", "e"], ["b"], ["d"]]
    assert A.actionable_partition == [["a", "c", "e"], ["d"]]
    assert A.neighbours("a") == ["a", "c"]
    assert A.neighbours("c") == ["a", "c", "e"]
