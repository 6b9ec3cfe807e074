"""Tests for the synthetic lending population: determinism, schema, causal links, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from governance.data.synthetic import (
    FAVOURABLE,
    FEATURES,
    LABEL,
    LOAN_PURPOSES,
    SYNTHETIC_SCHEMA,
    generate_population,
    repay_logit,
)

N = 30_000


@pytest.fixture(scope="module")
def pop() -> pd.DataFrame:
    return generate_population(N, seed=7)


def test_schema_lists_the_twenty_features_in_order():
    assert FEATURES == [
        "age",
        "annual_income",
        "employment_years",
        "credit_history_years",
        "debt_to_income",
        "revolving_utilization",
        "open_accounts",
        "total_accounts",
        "months_since_last_delinquency",
        "delinquencies_2y",
        "public_records",
        "recent_inquiries",
        "loan_amount",
        "loan_term_months",
        "savings",
        "checking_balance",
        "mortgage_accounts",
        "home_ownership",
        "loan_purpose",
        "has_cosigner",
    ]
    assert SYNTHETIC_SCHEMA["home_ownership"].categories == ("RENT", "MORTGAGE", "OWN", "OTHER")
    assert SYNTHETIC_SCHEMA["loan_amount"].min == 500
    assert SYNTHETIC_SCHEMA["loan_amount"].max == 100_000
    assert SYNTHETIC_SCHEMA["has_cosigner"].dtype == "bool"
    assert all(spec.description for spec in SYNTHETIC_SCHEMA)
    assert (LABEL, FAVOURABLE) == ("repaid", 1)


def test_columns_and_subject_ids():
    df = generate_population(3, seed=1, start_id=41)
    assert list(df.columns) == ["subject_id", *FEATURES, "repaid", "p_repay"]
    assert list(df["subject_id"]) == ["S00000041", "S00000042", "S00000043"]
    assert isinstance(df["subject_id"].iloc[0], str)


def test_same_arguments_give_identical_frames():
    a = generate_population(2_000, seed=3, start_id=10, label_shift=0.5)
    b = generate_population(2_000, seed=3, start_id=10, label_shift=0.5)
    pd.testing.assert_frame_equal(a, b)


def test_other_seed_gives_other_people():
    a = generate_population(500, seed=3)
    b = generate_population(500, seed=4)
    assert not a[FEATURES].equals(b[FEATURES])
    assert a["subject_id"].equals(b["subject_id"])


def test_rows_depend_only_on_seed_and_global_index():
    whole = generate_population(40_000, seed=5)
    # crosses a block boundary (16,384 rows per stream) at an unaligned start
    part = generate_population(10_000, seed=5, start_id=15_000)
    expected = whole.iloc[15_000:25_000].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)
    assert part["subject_id"].iloc[0] == "S00015000"


def test_empty_population_has_the_columns():
    df = generate_population(0)
    assert df.shape == (0, 23)
    assert df["age"].dtype == np.int64
    assert df["annual_income"].dtype == np.float64
    assert df["subject_id"].dtype == generate_population(1)["subject_id"].dtype


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n must be a non-negative integer; got -1"),
        ({"n": 2.5}, "n must be a non-negative integer; got 2.5"),
        ({"n": 5, "start_id": -3}, "start_id must be a non-negative integer; got -3"),
    ],
)
def test_bad_sizes_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_population(**kwargs)


def test_values_respect_schema_bounds_and_dtypes(pop):
    for spec in SYNTHETIC_SCHEMA:
        col = pop[spec.name]
        if spec.dtype == "category":
            assert set(col.unique()) <= set(spec.categories), spec.name
            assert all(isinstance(v, str) for v in col.iloc[:50]), spec.name
            continue
        assert col.min() >= spec.min and col.max() <= spec.max, spec.name
        if spec.dtype == "float":
            assert col.dtype == np.float64, spec.name
        else:
            assert col.dtype == np.int64, spec.name
        if spec.dtype == "bool":
            assert set(col.unique()) <= {0, 1}, spec.name
    assert set(pop["repaid"].unique()) == {0, 1}
    assert pop["repaid"].dtype == np.int64
    assert pop["p_repay"].between(0, 1).all()
    assert pop["subject_id"].is_unique
    assert set(pop["loan_purpose"].unique()) == set(LOAN_PURPOSES)


def test_causal_links_hold_in_every_row(pop):
    assert (pop["credit_history_years"] <= pop["age"] - 18).all()
    assert (pop["employment_years"] <= pop["age"] - 16).all()
    assert (pop["total_accounts"] >= pop["open_accounts"]).all()
    assert (pop["open_accounts"] >= pop["mortgage_accounts"]).all()
    recent = pop["months_since_last_delinquency"] < 24
    assert (pop.loc[~recent, "delinquencies_2y"] == 0).all()
    assert (pop.loc[recent, "delinquencies_2y"] >= 1).all()
    # no delinquency before the credit file opened
    delinquent = pop["months_since_last_delinquency"] < 120
    window = 12 * pop["credit_history_years"] + 11
    assert (pop.loc[delinquent, "months_since_last_delinquency"] <= window[delinquent]).all()
    mortgaged = pop["home_ownership"] == "MORTGAGE"
    assert (pop.loc[mortgaged, "mortgage_accounts"] >= 1).all()


def test_shares_are_plausible(pop):
    assert (pop["months_since_last_delinquency"] == 120).mean() > 0.5  # most: none in 10 years
    assert (pop["public_records"] == 0).mean() > 0.85
    assert pop["loan_term_months"].isin([36, 60]).mean() > 0.85
    assert pop["has_cosigner"].mean() < 0.15
    shares = pop["home_ownership"].value_counts(normalize=True)
    assert shares["RENT"] > shares["OTHER"] and shares["MORTGAGE"] > shares["OTHER"]


def test_correlations_have_the_expected_sign(pop):
    def corr(a: str, b: str) -> float:
        return float(np.corrcoef(pop[a], pop[b])[0, 1])

    assert corr("annual_income", "savings") > 0.1
    assert corr("age", "savings") > 0.05
    assert corr("employment_years", "annual_income") > 0.05
    assert corr("annual_income", "loan_amount") > 0.2
    assert corr("age", "credit_history_years") > 0.5
    assert corr("open_accounts", "total_accounts") > 0.5
    assert corr("revolving_utilization", "delinquencies_2y") > 0.05
    assert corr("revolving_utilization", "p_repay") < -0.2
    assert corr("debt_to_income", "p_repay") < -0.2
    assert corr("delinquencies_2y", "p_repay") < -0.2
    # income rises with age up to about 50
    young = pop.loc[pop["age"].between(20, 25), "annual_income"].median()
    mid = pop.loc[pop["age"].between(45, 55), "annual_income"].median()
    assert mid > 1.3 * young
    # owners with a mortgage are older and richer than renters
    by_home = pop.groupby("home_ownership")[["age", "annual_income"]].median()
    assert (by_home.loc["MORTGAGE"] > by_home.loc["RENT"]).all()
    # larger loans are more often on 60 months
    big = pop["loan_amount"] > pop["loan_amount"].median()
    assert (pop.loc[big, "loan_term_months"] >= 60).mean() > (
        pop.loc[~big, "loan_term_months"] >= 60
    ).mean()


def test_label_rate_and_denial_share(pop):
    assert 0.73 <= pop["repaid"].mean() <= 0.80
    assert 0.15 <= (pop["p_repay"] < 0.5).mean() <= 0.30
    # labels follow p_repay: mean of the labels matches mean of the probabilities
    assert abs(pop["repaid"].mean() - pop["p_repay"].mean()) < 0.01


def test_repay_logit_on_a_literal_applicant():
    f = {
        "age": np.array([45]),
        "annual_income": np.array([50_000.0]),
        "employment_years": np.array([10]),
        "credit_history_years": np.array([20]),
        "debt_to_income": np.array([0.3]),
        "revolving_utilization": np.array([0.4]),
        "months_since_last_delinquency": np.array([120]),
        "delinquencies_2y": np.array([0]),
        "public_records": np.array([0]),
        "recent_inquiries": np.array([0]),
        "loan_amount": np.array([10_000.0]),
        "loan_term_months": np.array([36]),
        "savings": np.array([0.0]),
        "has_cosigner": np.array([0]),
        "loan_purpose": np.array([0]),
    }
    # 2.4 + 0.04 * 20 + 0.02 * 10; every other term is zero at these values
    np.testing.assert_allclose(repay_logit(f), [3.4])
    # label_shift 1: intercept -0.5; DTI 0.6 above centre costs 2.5 * 1.5 * 0.3 more
    f["debt_to_income"] = np.array([0.6])
    base = 3.4 - 2.5 * 0.3 - 4.0 * 0.15
    np.testing.assert_allclose(repay_logit(f), [base])
    np.testing.assert_allclose(repay_logit(f, 1.0), [base - 0.5 - 2.5 * 0.5 * 0.3])


def test_label_shift_moves_labels_not_features():
    base = generate_population(20_000, seed=11)
    shifted = generate_population(20_000, seed=11, label_shift=1.0)
    pd.testing.assert_frame_equal(
        base[["subject_id", *FEATURES]], shifted[["subject_id", *FEATURES]]
    )
    changed = (base["repaid"] != shifted["repaid"]).mean()
    assert 0.02 < changed < 0.3
    assert shifted["repaid"].mean() < base["repaid"].mean() - 0.03
    assert not np.allclose(base["p_repay"], shifted["p_repay"])


def _model_frame(df: pd.DataFrame) -> pd.DataFrame:
    X = df[FEATURES].copy()
    for name in SYNTHETIC_SCHEMA.categorical:
        X[name] = pd.Categorical(X[name], categories=list(SYNTHETIC_SCHEMA[name].categories))
    return X


def test_a_model_learns_the_rule_on_fresh_rows():
    train = generate_population(20_000, seed=21)
    test = generate_population(10_000, seed=21, start_id=20_000)
    model = HistGradientBoostingClassifier(
        max_iter=100, random_state=0, categorical_features="from_dtype"
    )
    model.fit(_model_frame(train), train["repaid"])
    p = model.predict_proba(_model_frame(test))[:, 1]
    auc = roc_auc_score(test["repaid"], p)
    bayes = roc_auc_score(test["repaid"], test["p_repay"])
    assert auc > 0.8
    assert auc <= bayes + 0.01  # cannot beat the true probabilities
    assert 0.12 <= (p < 0.5).mean() <= 0.32
