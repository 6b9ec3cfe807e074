"""Tests for the real data loaders; those that read the shared data skip when it is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import governance
from governance.data.real import (
    ENV_VAR,
    HELOC_FILL,
    HELOC_INDICATORS,
    HELOC_SPECIAL_CODES,
    Dataset,
    load_german,
    load_givemecredit,
    load_heloc,
    shared_data_dir,
)
from governance.exceptions import DatasetUnavailable


def _need(folder: str) -> Path:
    path = shared_data_dir() / folder
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is absent; set {ENV_VAR} to run real-data tests")
    return path


@pytest.fixture(scope="module")
def german() -> Dataset:
    _need("german_credit")
    return load_german()


@pytest.fixture(scope="module")
def german_processed() -> Dataset:
    _need("german_credit")
    return load_german("processed")


@pytest.fixture(scope="module")
def heloc() -> Dataset:
    _need("heloc")
    return load_heloc()


@pytest.fixture(scope="module")
def gmsc() -> Dataset:
    _need("givemecredit")
    return load_givemecredit()


# -- locating the folder ---------------------------------------------------------------------


def test_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert shared_data_dir() == tmp_path


def test_default_folder_sits_beside_the_repo(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    repo_root = Path(governance.__file__).resolve().parent.parent
    assert shared_data_dir() == repo_root.parent / "shared" / "data"


@pytest.mark.parametrize(
    ("loader", "missing"),
    [
        (lambda: load_german(), "german_credit/german_credit.csv"),
        (lambda: load_german("processed"), "german_credit/german_processed_ustun2019.csv"),
        (load_heloc, "heloc/heloc_dataset_v1.csv"),
        (lambda: load_givemecredit(), "givemecredit/cs-training.csv.gz"),
    ],
)
def test_missing_files_raise_with_the_path(monkeypatch, tmp_path, loader, missing):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match=f"data file {tmp_path / missing} not found"):
        loader()


def test_unknown_german_encoding_raises():
    with pytest.raises(ValueError, match="encoding must be 'decoded' or 'processed'; got 'raw'"):
        load_german("raw")  # type: ignore[arg-type]


# -- German ----------------------------------------------------------------------------------


def test_german_decoded_shape_and_labels(german):
    assert german.name == "german"
    assert german.X.shape == (1000, 20)
    assert german.y.dtype == np.int64
    assert int(german.y.sum()) == 700
    assert german.X.isna().sum().sum() == 0
    assert german.schema.names == list(german.X.columns)
    assert german.source_sha256 == {
        "german_credit.csv": "345dde03661cc5501e72d853627ba0d683ffeda49d2ffc82a8c9d128d600c7fe",
        "german_codebook.csv": "27d2dd1bf82832c15b6214eef3b3be8b13ed55833ce5dd8051662ebb9f4a08f4",
    }


def test_german_decoded_literal_rows(german):
    # german_credit.csv rows 1-2:
    # A11,6,A34,A43,1169,A65,A75,4,A93,A101,4,A121,67,A143,A152,2,A173,1,A192,A201,1
    # A12,48,A32,A43,5951,A61,A73,2,A92,A101,2,A121,22,A143,A152,1,A173,1,A191,A201,2
    first = german.X.iloc[0].to_dict()
    assert first == {
        "checking_account_status": "< 0 DM",
        "duration_months": 6,
        "credit_history": "critical account/ other credits existing (not at this bank)",
        "purpose": "radio/television",
        "credit_amount": 1169,
        "savings_account_bonds": "unknown/ no savings account",
        "present_employment_since": ">= 7 years",
        "installment_rate_pct_of_disposable_income": 4,
        "personal_status_and_sex": "male : single",
        "other_debtors_guarantors": "none",
        "present_residence_since": 4,
        "property": "real estate",
        "age_years": 67,
        "other_installment_plans": "none",
        "housing": "own",
        "num_existing_credits_at_bank": 2,
        "job": "skilled employee / official",
        "num_people_liable_for_maintenance": 1,
        "telephone": "yes, registered under the customers name",
        "foreign_worker": "yes",
    }
    second = german.X.iloc[1]
    assert second["checking_account_status"] == "0 <= ... < 200 DM"
    assert second["savings_account_bonds"] == "< 100 DM"
    assert second["present_employment_since"] == "1 <= ... < 4 years"
    assert second["personal_status_and_sex"] == "female : divorced/separated/married"
    assert second["telephone"] == "none"
    assert list(german.y[:2]) == [1, 0]


def test_german_decoded_schema(german):
    assert german.schema["checking_account_status"].categories == (
        "< 0 DM",
        "0 <= ... < 200 DM",
        ">= 200 DM / salary assignments for at least 1 year",
        "no checking account",
    )
    # A47 (vacation) and A95 (female : single) never occur, so they are not offered
    assert "(vacation - does not exist?)" not in german.schema["purpose"].categories
    assert len(german.schema["personal_status_and_sex"].categories) == 4
    assert german.schema["property"].categories[1] == (
        "building society savings agreement/ life insurance"
    )
    assert german.schema["age_years"].dtype == "int"
    # the observed range flags later values as out of distribution; only declared domain
    # bounds are hard
    age = german.schema["age_years"]
    assert (age.observed_min, age.observed_max) == (19, 75)
    assert (age.min, age.max) == (None, None)
    rate = german.schema["installment_rate_pct_of_disposable_income"]
    assert (rate.min, rate.max) == (1, 4)
    assert german.X["credit_amount"].dtype == np.int64
    for name in german.schema.categorical:
        assert set(german.X[name]) <= set(german.schema[name].categories)


def test_german_processed_encoding(german_processed):
    X, y = german_processed.X, german_processed.y
    assert german_processed.name == "german_processed"
    assert X.shape == (1000, 38)
    assert int(y.sum()) == 700
    purposes = [c for c in X.columns if c.startswith("PurposeOfLoan_")]
    assert purposes == [
        "PurposeOfLoan_Business", "PurposeOfLoan_Education", "PurposeOfLoan_Electronics",
        "PurposeOfLoan_Furniture", "PurposeOfLoan_HomeAppliances", "PurposeOfLoan_NewCar",
        "PurposeOfLoan_Other", "PurposeOfLoan_Repairs", "PurposeOfLoan_Retraining",
        "PurposeOfLoan_UsedCar",
    ]  # fmt: skip
    # order kept: Male in Gender's place, the one-hot block in PurposeOfLoan's place
    assert list(X.columns[:7]) == [
        "Male", "ForeignWorker", "Single", "Age", "LoanDuration",
        "PurposeOfLoan_Business", "PurposeOfLoan_Education",
    ]  # fmt: skip
    assert X.columns[15] == "LoanAmount"
    assert X.columns[-1] == "JobClassIsSkilled"
    assert (X[purposes].sum(axis=1) == 1).all()
    assert all(X[c].dtype == np.int64 for c in X.columns)
    assert german_processed.schema["Male"].dtype == "bool"
    assert german_processed.schema["Age"].dtype == "int"
    # rows 1-2: "1,Male,0,1,67,6,Electronics,1169,..."
    #           "-1,Female,0,0,22,48,Electronics,5951,..."
    row = X.iloc[0]
    assert (row["Male"], row["Age"], row["LoanDuration"], row["LoanAmount"]) == (1, 67, 6, 1169)
    assert row["PurposeOfLoan_Electronics"] == 1 and row["PurposeOfLoan_NewCar"] == 0
    assert (X.iloc[1]["Male"], X.iloc[1]["Age"]) == (0, 22)
    assert list(y[:2]) == [1, 0]


def test_german_encodings_agree(german, german_processed):
    np.testing.assert_array_equal(german.y, german_processed.y)
    np.testing.assert_array_equal(german.X["age_years"], german_processed.X["Age"])
    male = german.X["personal_status_and_sex"].str.startswith("male")
    np.testing.assert_array_equal(male.astype(int), german_processed.X["Male"])


# -- HELOC -----------------------------------------------------------------------------------


def test_heloc_shape_labels_and_no_special_values(heloc):
    assert heloc.name == "heloc"
    assert heloc.X.shape == (10_459 - 588, 23 + len(HELOC_INDICATORS))
    assert int(heloc.y.sum()) == 4_735
    assert heloc.X.isna().sum().sum() == 0
    assert (heloc.X >= 0).all().all()
    assert all(heloc.X[c].dtype == np.int64 for c in heloc.X.columns)
    assert list(heloc.X.columns[:3]) == [
        "ExternalRiskEstimate",
        "MSinceOldestTradeOpen",
        "MSinceOldestTradeOpen_NoUsable",
    ]


def test_heloc_literal_row(heloc):
    # heloc_dataset_v1.csv row 2:
    # Bad,61,58,15,41,2,4,4,100,-7,0,8,7,0,67,0,0,0,0,-8,0,-8,-8,0
    row = heloc.X.iloc[1]
    assert heloc.y[1] == 0
    assert row["ExternalRiskEstimate"] == 61
    assert row["MSinceMostRecentDelq"] == 83 and row["MSinceMostRecentDelq_CondNotMet"] == 1
    assert row["MSinceMostRecentDelq_NoUsable"] == 0
    assert row["NetFractionInstallBurden"] == 74 and row["NetFractionInstallBurden_NoUsable"] == 1
    assert row["NumInstallTradesWBalance"] == 2 and row["NumInstallTradesWBalance_NoUsable"] == 1
    assert row["NumBank2NatlTradesWHighUtilization"] == 1
    assert row["NumRevolvingTradesWBalance"] == 0
    assert row["NumRevolvingTradesWBalance_NoUsable"] == 0
    assert row["MSinceMostRecentInqexcl7days"] == 0
    assert row["MSinceMostRecentInqexcl7days_CondNotMet"] == 0


def test_heloc_fill_values_follow_the_documented_rule(heloc):
    raw = pd.read_csv(_need("heloc") / "heloc_dataset_v1.csv").drop(columns="RiskPerformance")
    raw = raw[~(raw == -9).all(axis=1)]
    expected_fill: dict[str, dict[int, int]] = {}
    expected_flags = []
    for name in raw.columns:
        values = raw[name].to_numpy()
        valid = values[values >= 0]
        for code in (-7, -8, -9):
            count = int((values == code).sum())
            if not count:
                continue
            fill = valid.max() if code == -7 else np.round(np.median(valid))
            expected_fill.setdefault(name, {})[code] = int(fill)
            if count >= 0.01 * len(raw):
                expected_flags.append((name, code))
                flag = heloc.X[f"{name}_{HELOC_SPECIAL_CODES[code]}"]
                np.testing.assert_array_equal(flag.to_numpy(), (values == code).astype(int))
    assert expected_fill == HELOC_FILL
    assert tuple(expected_flags) == HELOC_INDICATORS


def test_heloc_trains_a_linear_model(heloc):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    model.fit(heloc.X, heloc.y)  # would raise on NaN
    assert model.score(heloc.X, heloc.y) > 0.65


# -- Give Me Some Credit ---------------------------------------------------------------------


def test_gmsc_shape_labels_and_imputation(gmsc):
    X = gmsc.X
    assert gmsc.name == "givemecredit"
    assert X.shape == (150_000, 11)
    assert int(gmsc.y.sum()) == 139_974
    assert "Unnamed: 0" not in X.columns and "SeriousDlqin2yrs" not in X.columns
    assert X.isna().sum().sum() == 0
    assert int(X["MonthlyIncome_missing"].sum()) == 29_731
    assert list(X.columns[4:6]) == ["MonthlyIncome", "MonthlyIncome_missing"]
    assert (X.loc[X["MonthlyIncome_missing"] == 1, "MonthlyIncome"] == 5_400).all()
    assert X["MonthlyIncome"].dtype == np.int64
    assert X["DebtRatio"].dtype == np.float64
    assert gmsc.schema["MonthlyIncome_missing"].dtype == "bool"
    assert gmsc.source_sha256 == {
        "cs-training.csv.gz": "b2d5b080b10ca9d559fa799b1ff5530fe20f5c90576c13a34c8bde981b7c6582"
    }


def test_gmsc_literal_rows(gmsc):
    # cs-training.csv data rows 1, 7 and 9:
    # 1,1,0.766126609,45,2,0.802982129,9120,13,0,6,0,2
    # 7,0,0.305682465,57,0,5710,NA,8,0,3,0,0
    # 9,0,0.116950644,27,0,46,NA,2,0,0,0,NA
    X = gmsc.X
    first = X.iloc[0]
    assert gmsc.y[0] == 0
    assert first["RevolvingUtilizationOfUnsecuredLines"] == pytest.approx(0.766126609)
    assert (first["age"], first["MonthlyIncome"], first["MonthlyIncome_missing"]) == (45, 9120, 0)
    assert first["NumberOfDependents"] == 2
    assert gmsc.y[6] == 1
    assert (X.iloc[6]["MonthlyIncome"], X.iloc[6]["MonthlyIncome_missing"]) == (5_400, 1)
    assert X.iloc[6]["DebtRatio"] == pytest.approx(5710.0)
    assert (X.iloc[8]["MonthlyIncome_missing"], X.iloc[8]["NumberOfDependents"]) == (1, 0)


def test_gmsc_stratified_subsample(gmsc):
    sub = load_givemecredit(n=1_000, seed=3)
    assert sub.X.shape == (1_000, 11)
    assert int(sub.y.sum()) == 933  # 1000 * 139,974 / 150,000 = 933.2
    assert sub.schema == gmsc.schema  # inferred on the whole file
    again = load_givemecredit(n=1_000, seed=3)
    pd.testing.assert_frame_equal(sub.X, again.X)
    other = load_givemecredit(n=1_000, seed=4)
    assert not sub.X.equals(other.X)
    # every sampled row is a row of the full file
    full = set(pd.util.hash_pandas_object(gmsc.X, index=False))
    assert set(pd.util.hash_pandas_object(sub.X, index=False)) <= full


@pytest.mark.parametrize("n", [0, -5, 150_001, 2.5])
def test_gmsc_bad_sample_size_raises(n):
    _need("givemecredit")
    with pytest.raises(ValueError, match=f"n must be an integer between 1 and 150000; got {n}"):
        load_givemecredit(n=n)


# -- tiny literal files: error paths and encodings without the shared data --------------------


def _write(root: Path, relpath: str, text: str) -> None:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


_TINY_CODEBOOK = """column,code,meaning
checking_account_status,A11,... < 0 DM
checking_account_status,A14,no checking account
property,A121,real estate
property,A123,"if not A121/A122 : car or other, not in attribute 6"
credit_risk,1,good
credit_risk,2,bad
"""


def test_german_decoding_on_a_tiny_file(monkeypatch, tmp_path):
    _write(tmp_path, "german_credit/german_codebook.csv", _TINY_CODEBOOK)
    _write(
        tmp_path,
        "german_credit/german_credit.csv",
        "checking_account_status,duration_months,property,credit_risk\n"
        "A14,12,A123,1\nA11,24,A121,2\nA14,6,A121,1\n",
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    data = load_german()
    assert data.X.to_dict("list") == {
        "checking_account_status": ["no checking account", "< 0 DM", "no checking account"],
        "duration_months": [12, 24, 6],
        "property": ["car or other, not in attribute 6", "real estate", "real estate"],
    }
    assert list(data.y) == [1, 0, 1]
    assert data.schema["checking_account_status"].categories == ("< 0 DM", "no checking account")
    assert data.schema["property"].categories == ("real estate", "car or other, not in attribute 6")
    assert set(data.source_sha256) == {"german_credit.csv", "german_codebook.csv"}


def test_german_code_missing_from_codebook_raises(monkeypatch, tmp_path):
    _write(tmp_path, "german_credit/german_codebook.csv", _TINY_CODEBOOK)
    _write(
        tmp_path,
        "german_credit/german_credit.csv",
        "checking_account_status,duration_months,property,credit_risk\nA19,12,A121,1\n",
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match=r"'checking_account_status' has codes \['A19'\]"):
        load_german()


def test_german_processed_on_a_tiny_file(monkeypatch, tmp_path):
    _write(
        tmp_path,
        "german_credit/german_processed_ustun2019.csv",
        "GoodCustomer,Gender,Age,PurposeOfLoan,LoanAmount\n"
        "1,Male,30,New Car,1000\n-1,Female,41,Other,2500\n1,Female,25,New Car,700\n",
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    data = load_german("processed")
    assert data.X.to_dict("list") == {
        "Male": [1, 0, 0],
        "Age": [30, 41, 25],
        "PurposeOfLoan_New_Car": [1, 0, 1],
        "PurposeOfLoan_Other": [0, 1, 0],
        "LoanAmount": [1000, 2500, 700],
    }
    assert list(data.y) == [1, 0, 1]


def test_german_processed_bad_label_raises(monkeypatch, tmp_path):
    _write(
        tmp_path,
        "german_credit/german_processed_ustun2019.csv",
        "GoodCustomer,Gender,Age,PurposeOfLoan\n1,Male,30,Other\n0,Female,41,Other\n",
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="'GoodCustomer' holds values other than 1 and -1"):
        load_german("processed")


_HELOC_COLUMNS = [
    "ExternalRiskEstimate", "MSinceOldestTradeOpen", "MSinceMostRecentTradeOpen",
    "AverageMInFile", "NumSatisfactoryTrades", "NumTrades60Ever2DerogPubRec",
    "NumTrades90Ever2DerogPubRec", "PercentTradesNeverDelq", "MSinceMostRecentDelq",
    "MaxDelq2PublicRecLast12M", "MaxDelqEver", "NumTotalTrades", "NumTradesOpeninLast12M",
    "PercentInstallTrades", "MSinceMostRecentInqexcl7days", "NumInqLast6M",
    "NumInqLast6Mexcl7days", "NetFractionRevolvingBurden", "NetFractionInstallBurden",
    "NumRevolvingTradesWBalance", "NumInstallTradesWBalance",
    "NumBank2NatlTradesWHighUtilization", "PercentTradesWBalance",
]  # fmt: skip


def _heloc_file(root: Path, rows: list[tuple[str, dict[str, int]]]) -> None:
    lines = [",".join(["RiskPerformance", *_HELOC_COLUMNS])]
    for label, special in rows:
        values = [special.get(c, 5) for c in _HELOC_COLUMNS]
        lines.append(",".join([label, *map(str, values)]))
    _write(root, "heloc/heloc_dataset_v1.csv", "\r\n".join(lines))


def test_heloc_handling_on_a_tiny_file(monkeypatch, tmp_path):
    _heloc_file(
        tmp_path,
        [
            ("Good", {}),
            ("Bad", dict.fromkeys(_HELOC_COLUMNS, -9)),  # no record at all: dropped
            ("Bad", {"MSinceMostRecentDelq": -7, "ExternalRiskEstimate": -9}),
            ("Good", {"MSinceMostRecentDelq": -8, "NetFractionInstallBurden": -8}),
        ],
    )
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    data = load_heloc()
    assert list(data.y) == [1, 0, 1]
    assert list(data.X["ExternalRiskEstimate"]) == [5, 72, 5]  # rare -9: no indicator
    assert list(data.X["MSinceMostRecentDelq"]) == [5, 83, 15]
    assert list(data.X["MSinceMostRecentDelq_CondNotMet"]) == [0, 1, 0]
    assert list(data.X["MSinceMostRecentDelq_NoUsable"]) == [0, 0, 1]
    assert list(data.X["NetFractionInstallBurden"]) == [5, 5, 74]
    assert list(data.X["NetFractionInstallBurden_NoUsable"]) == [0, 0, 1]
    # the indicator columns are fixed, whether or not the file holds their special value
    assert data.X.shape == (3, 33)
    assert list(data.X["MSinceOldestTradeOpen_NoUsable"]) == [0, 0, 0]
    assert "ExternalRiskEstimate_NoRecord" not in data.X.columns


def test_heloc_special_value_without_a_fill_raises(monkeypatch, tmp_path):
    _heloc_file(tmp_path, [("Good", {"AverageMInFile": -7})])
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(DatasetUnavailable, match="'AverageMInFile' holds special value -7"):
        load_heloc()
