"""Validation quarantines exactly the bad rows, each with the check it failed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from governance.exceptions import DecisionLogError
from governance.intake.validation import check_night_structure, validate_night
from tests.helpers import CONTRACTS, NIGHT


def clean(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "decision_id": [f"D{i}" for i in range(n)],
            "subject_id": [f"S{i}" for i in range(n)],
            "decided_at": pd.Timestamp("2026-11-24 09:00", tz="UTC"),
            "model_name": "credit",
            "model_version": "v1",
            "income": np.linspace(1e4, 9e4, n),
            "accounts": np.arange(n, dtype=float),
            "home": ["RENT", "OWN"] * (n // 2),
            "cosigner": [0.0, 1.0] * (n // 2),
            "score": [0.8] * n,
            "decision": ["approved"] * n,
        }
    )


def test_clean_log_passes_whole():
    result = validate_night(clean(), NIGHT, CONTRACTS)
    assert len(result.valid) == 10 and result.quarantine.empty and result.checks == []


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("income", np.nan, "expect_column_values_to_not_be_null"),
        ("income", np.inf, "expect_column_values_to_be_between"),
        ("income", -5.0, "expect_column_values_to_be_between"),
        ("accounts", 2.5, "expect_column_values_to_be_integers"),
        ("home", "CASTLE", "expect_column_values_to_be_in_set"),
        ("cosigner", 3.0, "expect_column_values_to_be_in_set"),
        ("score", 1.7, "expect_column_values_to_be_between"),
        ("decision", "maybe", "expect_column_values_to_be_in_set"),
        ("model_version", "v9", "model_version_is_registered"),
        ("decided_at", pd.Timestamp("2026-11-23 23:59", tz="UTC"), "decided_at_within_night"),
        ("decision", "denied", "decision_matches_score_and_threshold"),
        ("subject_id", None, "expect_column_values_to_not_be_null"),
    ],
)
def test_each_bad_value_quarantines_exactly_its_row(column, value, check):
    log = clean()
    log[column] = log[column].astype(object)
    log.at[3, column] = value
    result = validate_night(log, NIGHT, CONTRACTS)
    assert sorted(result.valid["decision_id"]) == sorted(f"D{i}" for i in range(10) if i != 3)
    assert set(result.quarantine["row_number"]) == {3}
    assert check in set(result.quarantine["check"])
    assert result.quarantine["row_json"].str.contains('"decision_id": "D3"').all()


def test_duplicate_ids_quarantine_every_copy():
    log = clean()
    log.loc[5, "decision_id"] = "D4"
    result = validate_night(log, NIGHT, CONTRACTS)
    assert set(result.quarantine["row_number"]) == {4, 5}
    assert set(result.quarantine["check"]) == {"expect_column_values_to_be_unique"}


def test_text_in_a_numeric_column_is_a_type_failure():
    log = clean()
    log["income"] = log["income"].astype(object)
    log.at[2, "income"] = "lots"
    result = validate_night(log, NIGHT, CONTRACTS)
    assert set(result.quarantine["row_number"]) == {2}
    assert "expect_column_values_to_be_of_type" in set(result.quarantine["check"])
    assert len(result.valid) == 9 and result.valid["income"].dtype == float


def test_ids_recorded_on_another_night_are_not_overwritten():
    result = validate_night(clean(), NIGHT, CONTRACTS, seen_elsewhere=lambda ids: {"D1", "D7"})
    assert set(result.quarantine["row_number"]) == {1, 7}
    assert set(result.quarantine["check"]) == {"decision_id_not_recorded_on_another_night"}


def test_missing_column_refuses_the_whole_log():
    with pytest.raises(DecisionLogError, match="lacks required column.*income"):
        validate_night(clean().drop(columns="income"), NIGHT, CONTRACTS)


def test_timestamps_without_time_zone_refuse_the_whole_log():
    log = clean()
    log["decided_at"] = log["decided_at"].dt.tz_localize(None)
    with pytest.raises(DecisionLogError, match="has no time zone"):
        validate_night(log, NIGHT, CONTRACTS)


def test_a_log_whose_scores_are_mostly_off_the_probability_scale_is_refused_whole():
    percent = clean().assign(score=[0.4] + [80.0] * 9)  # 0.4 %: on the scale by chance
    with pytest.raises(DecisionLogError, match=r"90% of 'score' values lie outside \[0, 1\]"):
        check_night_structure(percent, NIGHT, CONTRACTS)
    log = clean()
    log.loc[3, "score"] = 1.5  # one score off the scale is that row's problem: quarantined
    result = validate_night(log, NIGHT, CONTRACTS)
    assert set(result.quarantine["row_number"]) == {3}


def test_the_structural_checks_alone_need_no_rows_checked():
    assert check_night_structure(clean(), NIGHT, CONTRACTS).keys() == CONTRACTS.keys()
    with pytest.raises(DecisionLogError, match="more than once"):
        check_night_structure(pd.concat([clean(), clean()[["score"]]], axis=1), NIGHT, CONTRACTS)


def test_other_time_zones_are_converted_to_utc():
    log = clean()
    log["decided_at"] = pd.Timestamp("2026-11-24 23:30", tz="America/New_York")  # next UTC day
    result = validate_night(log, NIGHT, CONTRACTS)
    assert set(result.quarantine["check"]) == {"decided_at_within_night"}
    log["decided_at"] = pd.Timestamp("2026-11-24 06:00", tz="Europe/Berlin")
    assert validate_night(log, NIGHT, CONTRACTS).quarantine.empty


def test_empty_log_is_valid_and_empty():
    result = validate_night(clean().iloc[:0], NIGHT, CONTRACTS)
    assert result.valid.empty and result.quarantine.empty


def test_scores_the_registered_model_does_not_reproduce_are_quarantined_when_asked():
    """With ``reproduce``, rows that pass every other check but whose logged score the
    registered model does not give are quarantined; rows already failing are not scored."""
    log = clean()
    log.loc[2, "score"] = 0.8 + 1e-3  # the model gives 0.8 to every row
    log.loc[5, "income"] = np.nan  # fails on its own; must not reach the model
    seen = []

    def model_score(part: pd.DataFrame) -> np.ndarray:
        seen.extend(part["decision_id"])
        return np.full(len(part), 0.8)

    result = validate_night(log, NIGHT, CONTRACTS, reproduce={("credit", "v1"): model_score})
    assert "D5" not in seen and "D2" in seen
    assert set(result.quarantine["row_number"]) == {2, 5}
    bad = result.quarantine.loc[result.quarantine["row_number"] == 2].iloc[0]
    assert bad["check"] == "score_reproduced_by_registered_model"
    assert "registered model 0.800000" in bad["value"]
    assert {"check": "score_reproduced_by_registered_model", "column": "score",
            "failed_rows": 1} in result.checks
    assert len(validate_night(log, NIGHT, CONTRACTS).valid) == 9  # without it: not checked


def _with_observed():
    """The contract with observed ranges beside income's declared hard bounds [0, 1e6]."""
    from dataclasses import replace

    from governance.intake.validation import ModelContract
    from governance.registry.schema import FeatureSchema
    from tests.helpers import SCHEMA

    specs = []
    for s in SCHEMA:
        if s.name == "income":
            s = replace(s, observed_min=1.5e4, observed_max=8.5e4)
        if s.name == "accounts":  # no hard bounds at all: observed range only
            s = replace(s, min=None, max=None, observed_min=0, observed_max=8)
        specs.append(s)
    return {("credit", "v1"): ModelContract(FeatureSchema(tuple(specs)), threshold=0.5)}


def test_values_beyond_the_observed_range_are_flagged_and_processed_not_quarantined():
    from governance.intake.validation import OUT_OF_RANGE

    log = clean()  # income 1e4..9e4 (D0, D9 outside [1.5e4, 8.5e4]); accounts 0..9 (D9 > 8)
    result = validate_night(log, NIGHT, _with_observed())
    assert len(result.valid) == 10 and result.quarantine.empty
    flagged = dict(zip(result.valid["decision_id"], result.valid[OUT_OF_RANGE], strict=True))
    assert flagged["D0"] == ["income"]
    assert flagged["D9"] == ["income", "accounts"]
    assert all(flagged[f"D{i}"] is None for i in range(1, 9))
    assert result.flags == [
        {"check": "value_within_observed_range", "column": "accounts", "flagged_rows": 1},
        {"check": "value_within_observed_range", "column": "income", "flagged_rows": 2},
    ]


def test_declared_hard_bounds_still_quarantine_beside_an_observed_range():
    log = clean()
    log.at[4, "income"] = 2e6  # above the declared 1e6
    result = validate_night(log, NIGHT, _with_observed())
    assert set(result.quarantine["row_number"]) == {4}
    assert set(result.quarantine["check"]) == {"expect_column_values_to_be_between"}


def test_text_timestamps_must_name_their_time_zone():
    log = clean()
    log["decided_at"] = "2026-11-24T09:00:00+00:00"
    log.at[2, "decided_at"] = "2026-11-24 10:00:00"  # no zone: cannot be placed in a night
    log.at[3, "decided_at"] = "2026-11-24T10:00:00Z"
    result = validate_night(log, NIGHT, CONTRACTS)
    assert set(result.quarantine["row_number"]) == {2}
    assert set(result.quarantine["check"]) == {"decided_at_has_time_zone"}
    log["decided_at"] = "2026-11-24 10:00:00"
    with pytest.raises(DecisionLogError, match="carry no time zone"):
        validate_night(log, NIGHT, CONTRACTS)
