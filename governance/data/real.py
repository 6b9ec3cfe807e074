"""Loaders for the real credit data sets in the shared data folder (German, HELOC, Give Me Credit).

Each loader returns a :class:`Dataset`: features, a label where 1 is the favourable outcome, a
schema inferred from the features and the sha256 of every file read. The files are never copied
into the repository; see ``SOURCE.md`` in each data folder for provenance and licences.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from governance.exceptions import DatasetUnavailable
from governance.hashing import sha256_file
from governance.registry.schema import FeatureSchema

ENV_VAR = "GOVERNANCE_SHARED_DATA"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A labelled data set ready for training.

    Parameters
    ----------
    name : str
        Short name: ``german``, ``german_processed``, ``heloc`` or ``givemecredit``.
    X : DataFrame of shape (n_samples, n_features)
        Features only, in ``schema`` order; category features hold plain strings.
    y : ndarray of shape (n_samples,), dtype int64
        1 for the favourable outcome (good credit, no serious delinquency), 0 otherwise.
    schema : FeatureSchema
        Inferred from ``X``; bounds are the observed range unless a domain bound is known.
    source_sha256 : dict of str to str
        File name -> sha256 of each file read.
    """

    name: str
    X: pd.DataFrame
    y: np.ndarray
    schema: FeatureSchema
    source_sha256: dict[str, str]


def shared_data_dir() -> Path:
    """Return the shared data folder.

    ``$GOVERNANCE_SHARED_DATA`` if set, else ``<repo root>/../shared/data``, where the repo root
    is the folder that holds the ``governance`` package (so a clone at ``/tmp/x/main`` finds
    ``/tmp/x/shared/data``). The folder is not checked here; loaders raise
    :class:`~governance.exceptions.DatasetUnavailable` when their files are missing.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    repo_root = Path(__file__).resolve().parents[2]
    return repo_root.parent / "shared" / "data"


def _files(folder: str, *names: str) -> list[Path]:
    root = shared_data_dir()
    paths = [root / folder / name for name in names]
    for path in paths:
        if not path.is_file():
            raise DatasetUnavailable(
                f"data file {path} not found; expected the shared data folder at {root} "
                f"(set {ENV_VAR} to override)"
            )
    return paths


def _hashes(paths: list[Path]) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in paths}


def _categorical_schema(
    X: pd.DataFrame,
    categories: Mapping[str, list[str]],
    bounds: Mapping[str, tuple[float | None, float | None]],
    descriptions: Mapping[str, str],
) -> FeatureSchema:
    """Infer a schema, keeping the given category order instead of the sorted one."""
    typed = X.copy()
    for name, cats in categories.items():
        typed[name] = pd.Categorical(X[name], categories=cats)
    return FeatureSchema.from_frame(typed, bounds=bounds, descriptions=descriptions)


# -- German credit ---------------------------------------------------------------------------

_GERMAN_DESCRIPTIONS = {
    "checking_account_status": "Status of existing checking account",
    "duration_months": "Duration of the credit in months",
    "credit_history": "Credit history",
    "purpose": "Purpose of the credit",
    "credit_amount": "Credit amount (DM)",
    "savings_account_bonds": "Savings account / bonds",
    "present_employment_since": "Present employment since",
    "installment_rate_pct_of_disposable_income": "Instalment rate in % of disposable income",
    "personal_status_and_sex": "Personal status and sex",
    "other_debtors_guarantors": "Other debtors / guarantors",
    "present_residence_since": "Present residence since (years, coded 1-4)",
    "property": "Most valuable property",
    "age_years": "Age in years",
    "other_installment_plans": "Other instalment plans",
    "housing": "Housing",
    "num_existing_credits_at_bank": "Number of existing credits at this bank",
    "job": "Job",
    "num_people_liable_for_maintenance": "Number of people liable to provide maintenance for",
    "telephone": "Telephone",
    "foreign_worker": "Foreign worker",
}
_GERMAN_BOUNDS = {
    "installment_rate_pct_of_disposable_income": (1, 4),
    "present_residence_since": (1, 4),
}
_PROCESSED_DESCRIPTIONS = {
    "Male": "1 if the applicant is male",
    "ForeignWorker": "1 if a foreign worker",
    "Single": "1 if single",
    "Age": "Age in years",
    "LoanDuration": "Loan duration in months",
    "LoanAmount": "Loan amount (DM)",
    "LoanRateAsPercentOfIncome": "Instalment rate in % of disposable income (1-4)",
    "YearsAtCurrentHome": "Present residence since (years, coded 1-4)",
    "NumberOfOtherLoansAtBank": "Number of existing credits at this bank",
    "NumberOfLiableIndividuals": "Number of people liable to provide maintenance for",
    "HasTelephone": "1 if a telephone is registered in the applicant's name",
    "CheckingAccountBalance_geq_0": "1 if the checking balance is >= 0 DM",
    "CheckingAccountBalance_geq_200": "1 if the checking balance is >= 200 DM",
    "SavingsAccountBalance_geq_100": "1 if savings are >= 100 DM",
    "SavingsAccountBalance_geq_500": "1 if savings are >= 500 DM",
    "MissedPayments": "1 if payments were delayed in the past",
    "NoCurrentLoan": "1 if no credits taken or all paid back duly",
    "CriticalAccountOrLoansElsewhere": "1 if a critical account or credits at other banks",
    "OtherLoansAtBank": "1 if other instalment plans at a bank",
    "OtherLoansAtStore": "1 if other instalment plans at a store",
    "HasCoapplicant": "1 if there is a co-applicant",
    "HasGuarantor": "1 if there is a guarantor",
    "OwnsHouse": "1 if the applicant owns their home",
    "RentsHouse": "1 if the applicant rents their home",
    "Unemployed": "1 if unemployed",
    "YearsAtCurrentJob_lt_1": "1 if employed less than 1 year",
    "YearsAtCurrentJob_geq_4": "1 if employed 4 years or more",
    "JobClassIsSkilled": "1 if a skilled employee, official, manager or self-employed",
}


def _clean_meaning(text: str) -> str:
    """Make a german.doc meaning readable: '... < 0 DM' -> '< 0 DM'; drop 'if not A121 :'."""
    text = re.sub(r"^\.+\s*", "", text.strip())
    text = re.sub(r"^if not [A0-9/]+\s*:\s*", "", text)
    return re.sub(r"\s+", " ", text)


def load_german(encoding: Literal["decoded", "processed"] = "decoded") -> Dataset:
    """Load the Statlog German credit data (1,000 applicants, 700 good).

    Parameters
    ----------
    encoding : {"decoded", "processed"}, default="decoded"
        ``"decoded"``: ``german_credit.csv`` with each A-code replaced by its readable meaning
        from ``german_codebook.csv`` (leading dots and "if not A121 :" prefixes dropped, e.g.
        ``checking_account_status`` ``"< 0 DM"``); the 7 numeric columns stay int64; the schema
        lists each category feature's values in codebook order, limited to codes that occur
        (``purpose`` A47 and ``personal_status_and_sex`` A95 never do). Label ``credit_risk``
        1 = good -> ``y = 1``.

        ``"processed"``: ``german_processed_ustun2019.csv`` (Ustun, Spangher & Liu 2019), all
        numeric for exact reachable-set enumeration. ``GoodCustomer`` (1 / -1) -> ``y``;
        ``Gender`` becomes ``Male`` (int 0/1, 1 if male) in its place; ``PurposeOfLoan`` becomes
        one int 0/1 column ``PurposeOfLoan_<value>`` per value (sorted, value made an
        identifier) in its place; every other column keeps its name, order and int64 type.

    Returns
    -------
    Dataset
        Named ``german`` or ``german_processed``.

    Raises
    ------
    ValueError
        If ``encoding`` is not one of the two options.
    DatasetUnavailable
        If a file is missing or holds codes the codebook does not know.
    """
    if encoding == "decoded":
        return _german_decoded()
    if encoding == "processed":
        return _german_processed()
    raise ValueError(f"encoding must be 'decoded' or 'processed'; got {encoding!r}")


def _german_decoded() -> Dataset:
    data_path, book_path = _files("german_credit", "german_credit.csv", "german_codebook.csv")
    raw = pd.read_csv(data_path, dtype={"credit_risk": np.int64})
    book = pd.read_csv(book_path, dtype=str)
    X = raw.drop(columns="credit_risk")
    categories: dict[str, list[str]] = {}
    for name, rows in book[book["column"] != "credit_risk"].groupby("column", sort=False):
        mapping = dict(zip(rows["code"], rows["meaning"].map(_clean_meaning), strict=True))
        codes = X[name].astype(str)
        unknown = sorted(set(codes) - set(mapping))
        if unknown:
            raise DatasetUnavailable(
                f"{data_path} column {name!r} has codes {unknown} missing from {book_path}"
            )
        present = set(codes)
        categories[str(name)] = [mapping[c] for c in rows["code"] if c in present]
        X[name] = codes.map(mapping).astype("str")
    numeric = [c for c in X.columns if c not in categories]
    X[numeric] = X[numeric].astype(np.int64)
    y = (raw["credit_risk"].to_numpy() == 1).astype(np.int64)
    schema = _categorical_schema(X, categories, _GERMAN_BOUNDS, _GERMAN_DESCRIPTIONS)
    return Dataset("german", X, y, schema, _hashes([data_path, book_path]))


def _identifier(value: str) -> str:
    return re.sub(r"\W+", "_", str(value)).strip("_")


def _german_processed() -> Dataset:
    (path,) = _files("german_credit", "german_processed_ustun2019.csv")
    raw = pd.read_csv(path)
    label = raw["GoodCustomer"].to_numpy()
    if not np.isin(label, (1, -1)).all():
        raise DatasetUnavailable(f"{path} column 'GoodCustomer' holds values other than 1 and -1")
    cols: dict[str, pd.Series] = {}
    descriptions = dict(_PROCESSED_DESCRIPTIONS)
    for name in raw.columns:
        if name == "GoodCustomer":
            continue
        if name == "Gender":
            cols["Male"] = (raw[name] == "Male").astype(np.int64)
        elif name == "PurposeOfLoan":
            for value in sorted(raw[name].unique()):
                col = f"PurposeOfLoan_{_identifier(value)}"
                cols[col] = (raw[name] == value).astype(np.int64)
                descriptions[col] = f"1 if the loan purpose is {value}"
        else:
            cols[name] = raw[name].astype(np.int64)
    X = pd.DataFrame(cols)
    y = (label == 1).astype(np.int64)
    schema = FeatureSchema.from_frame(X, descriptions=descriptions)
    return Dataset("german_processed", X, y, schema, _hashes([path]))


# -- HELOC -----------------------------------------------------------------------------------

#: FICO special values: code -> suffix of the indicator column that flags it.
HELOC_SPECIAL_CODES = {-7: "CondNotMet", -8: "NoUsable", -9: "NoRecord"}

#: Replacement of each special value, per column, in the 9,871 rows kept. Rule: -7 ("condition
#: not met": no delinquency / no inquiry in the window) -> the column's largest valid value, the
#: furthest-back time the bureau reports; -8 and -9 (no usable trades, no record) -> the median of
#: the column's valid (non-negative) values, rounded to an integer.
HELOC_FILL: dict[str, dict[int, int]] = {
    "ExternalRiskEstimate": {-9: 72},
    "MSinceOldestTradeOpen": {-8: 186},
    "MSinceMostRecentDelq": {-7: 83, -8: 15},
    "MSinceMostRecentInqexcl7days": {-7: 24, -8: 0},
    "NetFractionRevolvingBurden": {-8: 29},
    "NetFractionInstallBurden": {-8: 74},
    "NumRevolvingTradesWBalance": {-8: 3},
    "NumInstallTradesWBalance": {-8: 2},
    "NumBank2NatlTradesWHighUtilization": {-8: 1},
    "PercentTradesWBalance": {-8: 67},
}

#: Special values common enough (at least 1 % of kept rows) to get an indicator column
#: ``<column>_<suffix>`` (int 0/1) placed right after the column.
HELOC_INDICATORS: tuple[tuple[str, int], ...] = (
    ("MSinceOldestTradeOpen", -8),
    ("MSinceMostRecentDelq", -7),
    ("MSinceMostRecentDelq", -8),
    ("MSinceMostRecentInqexcl7days", -7),
    ("MSinceMostRecentInqexcl7days", -8),
    ("NetFractionRevolvingBurden", -8),
    ("NetFractionInstallBurden", -8),
    ("NumRevolvingTradesWBalance", -8),
    ("NumInstallTradesWBalance", -8),
    ("NumBank2NatlTradesWHighUtilization", -8),
)

_HELOC_DESCRIPTIONS = {
    "ExternalRiskEstimate": "Consolidated external risk score",
    "MSinceOldestTradeOpen": "Months since oldest trade opened",
    "MSinceMostRecentTradeOpen": "Months since most recent trade opened",
    "AverageMInFile": "Average months in file",
    "NumSatisfactoryTrades": "Number of satisfactory trades",
    "NumTrades60Ever2DerogPubRec": "Trades ever 60+ days past due or derogatory public record",
    "NumTrades90Ever2DerogPubRec": "Trades ever 90+ days past due or derogatory public record",
    "PercentTradesNeverDelq": "Percent of trades never delinquent",
    "MSinceMostRecentDelq": "Months since most recent delinquency",
    "MaxDelq2PublicRecLast12M": "Worst delinquency or public record in last 12 months (code 0-9)",
    "MaxDelqEver": "Worst delinquency ever (code 1-9)",
    "NumTotalTrades": "Total number of credit accounts",
    "NumTradesOpeninLast12M": "Trades opened in the last 12 months",
    "PercentInstallTrades": "Percent of instalment trades",
    "MSinceMostRecentInqexcl7days": "Months since most recent inquiry, last 7 days excluded",
    "NumInqLast6M": "Inquiries in the last 6 months",
    "NumInqLast6Mexcl7days": "Inquiries in the last 6 months, last 7 days excluded",
    "NetFractionRevolvingBurden": "Revolving balance / credit limit (percent)",
    "NetFractionInstallBurden": "Instalment balance / original loan amount (percent)",
    "NumRevolvingTradesWBalance": "Revolving trades with a balance",
    "NumInstallTradesWBalance": "Instalment trades with a balance",
    "NumBank2NatlTradesWHighUtilization": "Bank or national trades with high utilisation",
    "PercentTradesWBalance": "Percent of trades with a balance",
}
_HELOC_SPECIAL_MEANING = {
    -7: "condition not met (none in the window)",
    -8: "no usable or valid trades or inquiries",
    -9: "no bureau record",
}
_HELOC_BOUNDS = {
    name: (0, 100)
    for name in (
        "PercentTradesNeverDelq",
        "PercentInstallTrades",
        "PercentTradesWBalance",
    )
}


def load_heloc() -> Dataset:
    """Load FICO's HELOC data (``heloc_dataset_v1.csv``): 9,871 applicants, 4,735 good.

    Label ``RiskPerformance``: "Good" (never 90+ days past due in 24 months) -> ``y = 1``.
    The 588 rows where every feature is -9 (no bureau record at all) are dropped. The other
    special values are replaced so that no negative code and no NaN is left and a linear model
    can use every column:

    - each special value is replaced per column by the value in :data:`HELOC_FILL`: -7
      ("condition not met", i.e. no delinquency or no inquiry in the window) by the column's
      largest valid value; -8 (no usable trades) and -9 (no record) by the median of the valid
      values (e.g. ``MSinceMostRecentDelq``: -7 -> 83, -8 -> 15; ``ExternalRiskEstimate``:
      -9 -> 72; ``NetFractionInstallBurden``: -8 -> 74);
    - for the 10 (column, special value) pairs that occur in at least 1 % of kept rows
      (:data:`HELOC_INDICATORS`), an int 0/1 column ``<column>_<suffix>`` (suffix
      ``CondNotMet`` for -7, ``NoUsable`` for -8, ``NoRecord`` for -9) placed right after the
      column records that the value was special. The list is fixed, so the columns never
      depend on the file's content.
      ``ExternalRiskEstimate`` (-9 in 10 rows) and ``PercentTradesWBalance`` (-8 in 18 rows)
      get no indicator.

    ``MaxDelq2PublicRecLast12M`` and ``MaxDelqEver`` are FICO's ordinal codes and stay integers.
    All 33 features are int64.

    Returns
    -------
    Dataset
        Named ``heloc``.

    Raises
    ------
    DatasetUnavailable
        If the file is missing or holds a special value with no entry in :data:`HELOC_FILL`.
    """
    (path,) = _files("heloc", "heloc_dataset_v1.csv")
    raw = pd.read_csv(path)
    features = raw.drop(columns="RiskPerformance").astype(np.int64)
    keep = ~(features == -9).all(axis=1).to_numpy()
    features = features.loc[keep].reset_index(drop=True)
    y = (raw["RiskPerformance"].to_numpy()[keep] == "Good").astype(np.int64)
    cols: dict[str, np.ndarray] = {}
    descriptions: dict[str, str] = {}
    for name in features.columns:
        values = features[name].to_numpy()
        out = values.copy()
        for code in np.unique(values[values < 0]):
            fill = HELOC_FILL.get(name, {}).get(int(code))
            if fill is None:
                raise DatasetUnavailable(
                    f"{path} column {name!r} holds special value {code} with no replacement "
                    f"in HELOC_FILL"
                )
            out[values == code] = fill
        cols[name] = out
        descriptions[name] = _HELOC_DESCRIPTIONS.get(name, "")
        # indicator columns are fixed by HELOC_INDICATORS, so the columns never depend on content
        for code in [c for n, c in HELOC_INDICATORS if n == name]:
            flag = f"{name}_{HELOC_SPECIAL_CODES[code]}"
            cols[flag] = (values == code).astype(np.int64)
            descriptions[flag] = f"1 if {name} was {code}: {_HELOC_SPECIAL_MEANING[code]}"
    X = pd.DataFrame(cols)
    schema = FeatureSchema.from_frame(X, bounds=_HELOC_BOUNDS, descriptions=descriptions)
    return Dataset("heloc", X, y, schema, _hashes([path]))


# -- Give Me Some Credit ---------------------------------------------------------------------

_GMSC_DESCRIPTIONS = {
    "RevolvingUtilizationOfUnsecuredLines": "Balance on cards and personal lines / credit limits",
    "age": "Age in years",
    "NumberOfTime30-59DaysPastDueNotWorse": "Times 30-59 days past due, no worse, in 2 years",
    "DebtRatio": "Monthly debt payments, alimony and living costs / monthly gross income",
    "MonthlyIncome": "Monthly income (median-imputed where missing)",
    "MonthlyIncome_missing": "1 if monthly income was missing (imputed with the median)",
    "NumberOfOpenCreditLinesAndLoans": "Open loans and lines of credit",
    "NumberOfTimes90DaysLate": "Times 90 or more days past due",
    "NumberRealEstateLoansOrLines": "Mortgage and real-estate loans, incl. home-equity lines",
    "NumberOfTime60-89DaysPastDueNotWorse": "Times 60-89 days past due, no worse, in 2 years",
    "NumberOfDependents": "Dependents in the family excluding themselves (median-imputed)",
}


def load_givemecredit(n: int | None = None, seed: int = 0) -> Dataset:
    """Load Kaggle's Give Me Some Credit training file: 150,000 borrowers, 139,974 favourable.

    Label: ``y = 1 - SeriousDlqin2yrs`` (no serious delinquency in two years is favourable).
    The unnamed row-id column is dropped. Missing values are imputed with medians taken over the
    whole file, so they do not depend on ``n`` or ``seed``:

    - ``MonthlyIncome`` (29,731 missing) -> the median 5,400, with an int 0/1 column
      ``MonthlyIncome_missing`` placed right after it;
    - ``NumberOfDependents`` (3,924 missing) -> the median 0. Every such row also lacks income,
      so ``MonthlyIncome_missing`` flags it as well.

    Counts and ratios are kept as in the file: the past-due counts hold the codes 96 and 98 for
    a few hundred borrowers, and ``DebtRatio`` and ``RevolvingUtilizationOfUnsecuredLines`` have
    extreme values. The ratios are float64, every other feature int64.

    Parameters
    ----------
    n : int or None, default=None
        If given, a random subsample of ``n`` rows, stratified by label (each class keeps its
        share, rounded by largest remainder), in file order.
    seed : int, default=0
        Seed of the subsample.

    Returns
    -------
    Dataset
        Named ``givemecredit``; its schema is inferred on the whole file whatever ``n`` is.

    Raises
    ------
    ValueError
        If ``n`` is not between 1 and the number of rows.
    DatasetUnavailable
        If the file is missing.
    """
    (path,) = _files("givemecredit", "cs-training.csv.gz")
    raw = pd.read_csv(path)
    raw = raw.drop(columns=raw.columns[0])
    y = 1 - raw.pop("SeriousDlqin2yrs").to_numpy().astype(np.int64)
    if n is not None and (int(n) != n or not 1 <= n <= len(raw)):
        raise ValueError(f"n must be an integer between 1 and {len(raw)}; got {n!r}")
    income = raw["MonthlyIncome"]
    missing = income.isna()
    raw["MonthlyIncome"] = income.fillna(income.median()).astype(np.int64)
    at = raw.columns.get_loc("MonthlyIncome") + 1
    raw.insert(at, "MonthlyIncome_missing", missing.astype(np.int64))
    deps = raw["NumberOfDependents"]
    raw["NumberOfDependents"] = deps.fillna(deps.median()).astype(np.int64)
    ratios = ["RevolvingUtilizationOfUnsecuredLines", "DebtRatio"]
    counts = [c for c in raw.columns if c not in ratios]
    raw[counts] = raw[counts].astype(np.int64)
    schema = FeatureSchema.from_frame(raw, descriptions=_GMSC_DESCRIPTIONS)
    X = raw
    if n is not None and n < len(raw):
        rows = _stratified_rows(y, int(n), seed)
        X, y = raw.iloc[rows].reset_index(drop=True), y[rows]
    return Dataset("givemecredit", X, y, schema, _hashes([path]))


def _stratified_rows(y: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Row indices of a label-stratified sample of ``n`` rows, sorted."""
    classes, counts = np.unique(y, return_counts=True)
    exact = n * counts / counts.sum()
    take = np.floor(exact).astype(np.int64)
    # largest remainder: hand the rows lost to flooring to the classes closest to the next one
    order = np.argsort(-(exact - take), kind="stable")
    take[order[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(y == c), size=k, replace=False)
        for c, k in zip(classes, take, strict=True)
    ]
    return np.sort(np.concatenate(picks))
