"""Synthetic loan applicants with known causal structure and a documented repayment rule.

The population is generated in fixed blocks of rows, each drawn from its own random stream
``SeedSequence([seed, block])``; a row's values therefore depend only on ``seed`` and its global
index ``start_id + i``, so ``generate_population(10, start_id=5)`` equals rows 5..14 of
``generate_population(15)``, and frames built in pieces agree with one built at once.

Generative story, per applicant. A hidden stress factor ``r`` (not a feature) makes
utilisation, DTI, delinquencies and savings co-vary the way bureau data do; 27 % of applicants
belong to a distressed segment whose ``r`` is shifted by +2, which gives the left-skewed risk
distribution of real lending books (most applicants safe, a minority clearly risky).

1. ``age`` ~ 18 + Gamma(2.2, 10), rounded, capped at 90.
2. ``employment_years`` = floor(Beta(1.3, 2.6) * (age - 16)), 0 for the 7 % without a job;
   hence ``employment_years <= age - 16``.
3. ``annual_income``: log-normal; log income rises by 0.025 a year of age up to 50, falls slowly
   after 62, rises 0.012 a year of employment (up to 30); halved for the jobless.
4. ``credit_history_years`` = floor(Beta(2.5, 1.3) * (age - 17)), capped at ``age - 18``.
5. ``home_ownership``: multinomial logit in age and log income (the young or poor rent,
   middle-aged earners carry a mortgage, the old own outright).
6. ``mortgage_accounts``: 1 + Poisson(0.3) for MORTGAGE; 0 or 1 (8 % / 3 %) for OWN / others.
7. ``open_accounts`` ~ Poisson(gamma-mixed rate rising with history and income) + mortgages;
   ``total_accounts`` = open + Poisson(1 + 0.5 * history).
8. Delinquency: P(any in the last 10 years) = sigmoid(-1.5 + 1.1 r); if any,
   ``months_since_last_delinquency`` is uniform on [0, min(119, 12 * history + 11)] (none before
   the credit file opened), else 120; ``delinquencies_2y`` is 0 when ``months >= 24``, else
   1 + Poisson(0.4 + 0.6 max(r, 0)).
9. ``public_records`` ~ Poisson(0.04 exp(r)); ``recent_inquiries`` ~ Poisson(gamma-mixed mean
   0.9 exp(0.3 r)).
10. ``revolving_utilization`` = 1.2 sigmoid(-0.7 + 0.9 r + N(0, 0.9)), 0 for 6 % with no revolving
    balance; ``debt_to_income`` log-normal, up with r and a mortgage, down with income.
11. ``savings`` and ``checking_balance``: log-normal, proportional to income, savings growing with
    age, both falling with r; 10 % / 4 % hold nothing.
12. ``loan_purpose``: base shares, home improvement six times likelier for owners than renters,
    card and consolidation likelier at high utilisation. ``loan_amount`` log-normal around
    0.18 * income * purpose multiplier, rounded to 10; ``loan_term_months`` is 36 or 60 (60
    likelier for large loans) with 2 % each on 12, 24, 48, 72 and 84.
13. ``has_cosigner``: sigmoid(-3.2 + 0.8 [age < 25] + 0.6 [income < 30k]).

Repayment rule (:func:`repay_logit`, the documented "truth"; ``s`` is ``label_shift``)::

    z = 2.4 - 0.5 s
        + 0.8  * log(annual_income / 50_000)
        - 2.5 (1 + 0.5 s) * (debt_to_income - 0.3)
        - 1.5 (1 + 0.5 s) * (revolving_utilization - 0.4)
        - 4.0  * max(revolving_utilization - 0.8, 0)       # near or over the limit (non-linear)
        - 4.0  * max(debt_to_income - 0.45, 0)             # unaffordable debt (non-linear)
        - 0.8  * delinquencies_2y
        - 1.8  * [months_since_last_delinquency < 120] * (1 - months_since_last_delinquency / 120)
        - 0.7  * min(public_records, 3)
        - 0.2  * recent_inquiries
        + 0.2  * log1p(savings / 10_000)
        + 0.04 * min(credit_history_years, 25)
        + 0.02 * min(employment_years, 20)
        - 0.4  * log(loan_amount / (0.2 * annual_income))
        - 0.0006 * (age - 45) ** 2                         # U-shaped age risk (non-linear)
        - 0.2  * [loan_term_months >= 60]
        + 0.6  * has_cosigner
        + purpose effect (small_business -0.6, medical -0.3, car +0.2, home_improvement +0.1)

``p_repay = sigmoid(z)`` and ``repaid = [u < p_repay]`` with ``u`` uniform from the row's own
stream, so a change of ``label_shift`` reuses the same ``u`` and flips only rows the rule moves.
With ``s = 0`` about 75.7 % repay and 19.7 % have ``p_repay < 0.5``; the demo's
gradient-boosting recipe trained on 20k rows reaches AUC 0.91 on fresh rows and denies about
20 % at threshold 0.5. ``s = 1`` gives 69 % repaid, ``s = -1`` 82 %
(``bench/synthetic_population.py`` prints these figures).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.registry.codebook import Codebook
from governance.registry.schema import FeatureSchema, FeatureSpec

LABEL = "repaid"
FAVOURABLE = 1
HOME_OWNERSHIP = ("RENT", "MORTGAGE", "OWN", "OTHER")
LOAN_PURPOSES = (
    "debt_consolidation",
    "credit_card",
    "home_improvement",
    "major_purchase",
    "car",
    "medical",
    "small_business",
    "other",
)
LOAN_TERMS = (12, 24, 36, 48, 60, 72, 84)

SYNTHETIC_SCHEMA = FeatureSchema(
    (
        FeatureSpec("age", "int", 18, 90, description="Age in years"),
        FeatureSpec("annual_income", "float", 0, 1_000_000, description="Gross annual income"),
        FeatureSpec(
            "employment_years", "int", 0, 60, description="Years at current employer (<= age - 16)"
        ),
        FeatureSpec(
            "credit_history_years",
            "int",
            0,
            72,
            description="Length of credit history in years (<= age - 18)",
        ),
        FeatureSpec(
            "debt_to_income", "float", 0, 2, description="Monthly debt payments / monthly income"
        ),
        FeatureSpec(
            "revolving_utilization",
            "float",
            0,
            1.5,
            description="Revolving balance / revolving credit limit",
        ),
        FeatureSpec("open_accounts", "int", 0, 60, description="Open credit accounts"),
        FeatureSpec(
            "total_accounts", "int", 0, 120, description="Credit accounts ever opened (>= open)"
        ),
        FeatureSpec(
            "months_since_last_delinquency",
            "int",
            0,
            120,
            description="Months since the last delinquency; 120 = none in the last 10 years",
        ),
        FeatureSpec(
            "delinquencies_2y", "int", 0, 20, description="Delinquencies in the last 2 years"
        ),
        FeatureSpec("public_records", "int", 0, 10, description="Derogatory public records"),
        FeatureSpec(
            "recent_inquiries", "int", 0, 20, description="Credit inquiries in the last 6 months"
        ),
        FeatureSpec("loan_amount", "float", 500, 100_000, description="Requested loan amount"),
        FeatureSpec("loan_term_months", "int", 12, 84, description="Loan term in months"),
        FeatureSpec("savings", "float", 0, 2_000_000, description="Savings and investments"),
        FeatureSpec(
            "checking_balance", "float", 0, 500_000, description="Checking account balance"
        ),
        FeatureSpec("mortgage_accounts", "int", 0, 10, description="Open mortgage accounts"),
        FeatureSpec(
            "home_ownership",
            "category",
            categories=HOME_OWNERSHIP,
            description="Housing status",
        ),
        FeatureSpec(
            "loan_purpose",
            "category",
            categories=LOAN_PURPOSES,
            description="Stated purpose of the loan",
        ),
        FeatureSpec(
            "has_cosigner", "bool", 0, 1, description="1 if a co-signer guarantees the loan"
        ),
    )
)

# Words for reviewers and applicants: what each feature is called and what its codes mean.
SYNTHETIC_CODEBOOK = Codebook(
    features={
        "age": "Age",
        "annual_income": "Annual income",
        "employment_years": "Years with current employer",
        "credit_history_years": "Length of credit history (years)",
        "debt_to_income": "Debt-to-income ratio",
        "revolving_utilization": "Revolving credit utilisation",
        "open_accounts": "Open credit accounts",
        "total_accounts": "Credit accounts ever opened",
        "months_since_last_delinquency": "Months since last delinquency",
        "delinquencies_2y": "Delinquencies, last 2 years",
        "public_records": "Derogatory public records",
        "recent_inquiries": "Credit inquiries, last 6 months",
        "loan_amount": "Loan amount requested",
        "loan_term_months": "Loan term (months)",
        "savings": "Savings and investments",
        "checking_balance": "Checking account balance",
        "mortgage_accounts": "Open mortgage accounts",
        "home_ownership": "Housing",
        "loan_purpose": "Purpose of the loan",
        "has_cosigner": "Co-signer",
    },
    values={
        "home_ownership": {
            "RENT": "renting",
            "MORTGAGE": "owner, with a mortgage",
            "OWN": "owner, outright",
            "OTHER": "other",
        },
        "loan_purpose": {p: p.replace("_", " ") for p in LOAN_PURPOSES},
        "has_cosigner": {"0": "no", "1": "yes"},
    },
)
FEATURES: list[str] = SYNTHETIC_SCHEMA.names

_TERMS = np.array(LOAN_TERMS, dtype=np.int64)
_BLOCK = 1 << 14  # rows per random stream; fixed, so a row's values never depend on n
_PURPOSE_SHARE = np.array([0.36, 0.18, 0.08, 0.08, 0.11, 0.05, 0.04, 0.10])
_PURPOSE_AMOUNT = np.array([1.0, 0.7, 1.2, 0.6, 1.0, 0.4, 1.6, 0.5])
_PURPOSE_EFFECT = np.array([0.0, 0.0, 0.1, 0.0, 0.2, -0.3, -0.6, 0.0])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _pick(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one column index per row of non-negative ``weights`` (n, k), vectorised."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return np.minimum((cum < u[:, None]).sum(axis=1), weights.shape[1] - 1)


def _features(rng: np.random.Generator, m: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw ``m`` applicants; return feature arrays (categories as codes) and the labels' uniforms.

    Every draw has a fixed size ``m`` and a fixed order, so the stream is reproducible.
    """
    distressed = rng.random(m) < 0.27
    r = rng.standard_normal(m) + 2.0 * distressed  # hidden financial-stress factor

    age = np.minimum(np.round(18 + rng.gamma(2.2, 10.0, m)), 90).astype(np.int64)
    jobless = rng.random(m) < 0.07
    emp = np.floor(rng.beta(1.3, 2.6, m) * (age - 16)).astype(np.int64)
    emp = np.where(jobless, 0, np.minimum(emp, 60))

    age_term = 0.025 * (np.minimum(age, 50) - 18) - 0.01 * np.maximum(age - 62, 0)
    log_inc = 10.3 + age_term + 0.012 * np.minimum(emp, 30) + rng.normal(0, 0.5, m)
    log_inc = np.where(jobless, log_inc - np.log(2.0), log_inc)
    income = np.clip(np.round(np.exp(log_inc), 2), 0, 1_000_000)
    log_inc = np.log(np.maximum(income, 1.0))

    hist = np.floor(rng.beta(2.5, 1.3, m) * (age - 17)).astype(np.int64)
    hist = np.clip(hist, 0, np.minimum(age - 18, 72))

    # home ownership: softmax over RENT, MORTGAGE, OWN, OTHER
    inc_c = log_inc - 10.8
    scores = np.stack(
        [
            np.zeros(m),
            -2.2 + 0.09 * (np.minimum(age, 50) - 18) + 1.0 * inc_c,
            -4.2 + 0.075 * (age - 18) + 0.4 * inc_c,
            np.full(m, -3.0) + 0.5 * (age < 25),
        ],
        axis=1,
    )
    home = _pick(rng, np.exp(scores))
    mort_extra = rng.poisson(0.3, m)
    other_mort = rng.random(m) < np.where(home == 2, 0.08, 0.03)
    mortgages = np.where(home == 1, 1 + mort_extra, other_mort.astype(np.int64))
    mortgages = np.minimum(mortgages, 10)

    rate = np.exp(0.7 + 0.6 * np.log1p(np.minimum(hist, 30)) + 0.3 * inc_c)
    open_acc = rng.poisson(rate * rng.gamma(4.0, 0.25, m)) + mortgages
    open_acc = np.minimum(open_acc, 60)
    total_acc = np.minimum(open_acc + rng.poisson(1.0 + 0.5 * hist), 120)

    any_delinq = rng.random(m) < _sigmoid(-1.5 + 1.1 * r)
    window = np.minimum(119, 12 * hist + 11)
    when = np.floor(rng.random(m) * (window + 1)).astype(np.int64)
    months = np.where(any_delinq, when, 120)
    recent = 1 + rng.poisson(0.4 + 0.6 * np.maximum(r, 0.0))
    delinq2 = np.where(months < 24, np.minimum(recent, 20), 0)
    pub = np.minimum(rng.poisson(0.04 * np.exp(r)), 10)
    inquiries = np.minimum(rng.poisson(0.9 * np.exp(0.3 * r) * rng.gamma(2.0, 0.5, m)), 20)

    util = 1.2 * _sigmoid(-0.7 + 0.9 * r + rng.normal(0, 0.9, m))
    util = np.where(rng.random(m) < 0.06, 0.0, util)
    util = np.clip(np.round(util, 4), 0, 1.5)
    log_dti = np.log(0.22) + 0.25 * r + 0.25 * (home == 1) - 0.15 * inc_c + rng.normal(0, 0.45, m)
    dti = np.clip(np.round(np.exp(log_dti), 4), 0, 2)

    log_sav = log_inc - 1.3 + 0.035 * (np.minimum(age, 70) - 18) - 0.5 * r + rng.normal(0, 1.1, m)
    savings = np.where(rng.random(m) < 0.10, 0.0, np.round(np.exp(log_sav), 2))
    savings = np.clip(savings, 0, 2_000_000)
    log_chk = log_inc - 3.0 - 0.3 * r + rng.normal(0, 1.0, m)
    checking = np.where(rng.random(m) < 0.04, 0.0, np.round(np.exp(log_chk), 2))
    checking = np.clip(checking, 0, 500_000)

    w = np.tile(_PURPOSE_SHARE, (m, 1))
    w[:, 2] *= np.where((home == 1) | (home == 2), 3.0, 0.5)
    w[:, 0] *= 0.6 + util
    w[:, 1] *= 0.6 + util
    purpose = _pick(rng, w)
    log_amt = np.log(0.18 * income * _PURPOSE_AMOUNT[purpose]) + rng.normal(0, 0.5, m)
    amount = np.clip(np.round(np.exp(log_amt), -1), 500, 100_000)

    p60 = 0.12 + 0.55 * _sigmoid(1.5 * (np.log(amount) - np.log(15_000)))
    p36 = 0.9 - p60
    odd = np.full(m, 0.02)  # each of 12, 24, 48, 72 and 84 months
    term = _TERMS[_pick(rng, np.column_stack([odd, odd, p36, odd, p60, odd, odd]))]
    cosigner = rng.random(m) < _sigmoid(-3.2 + 0.8 * (age < 25) + 0.6 * (income < 30_000))

    u = rng.random(m)  # label noise, drawn last so it never shifts the features' stream
    feats = {
        "age": age,
        "annual_income": income,
        "employment_years": emp,
        "credit_history_years": hist,
        "debt_to_income": dti,
        "revolving_utilization": util,
        "open_accounts": open_acc.astype(np.int64),
        "total_accounts": total_acc.astype(np.int64),
        "months_since_last_delinquency": months.astype(np.int64),
        "delinquencies_2y": delinq2.astype(np.int64),
        "public_records": pub.astype(np.int64),
        "recent_inquiries": inquiries.astype(np.int64),
        "loan_amount": amount,
        "loan_term_months": term,
        "savings": savings,
        "checking_balance": checking,
        "mortgage_accounts": mortgages.astype(np.int64),
        "home_ownership": home,
        "loan_purpose": purpose,
        "has_cosigner": cosigner.astype(np.int64),
    }
    return feats, u


def repay_logit(f: dict[str, np.ndarray], label_shift: float = 0.0) -> np.ndarray:
    """Log-odds of repayment under the documented rule (see the module docstring).

    Parameters
    ----------
    f : dict of str to ndarray
        Feature arrays of equal length; ``loan_purpose`` as codes into ``LOAN_PURPOSES``.
    label_shift : float, default=0.0
        Drift of the rule: scales the DTI and utilisation weights by ``1 + 0.5 * label_shift``
        and lowers the intercept by ``0.4 * label_shift``.

    Returns
    -------
    z : ndarray of shape (n_samples,)
    """
    s = float(label_shift)
    income = np.maximum(f["annual_income"], 1.0)
    dti, util = f["debt_to_income"], f["revolving_utilization"]
    months = f["months_since_last_delinquency"]
    return (
        2.4
        - 0.5 * s
        + 0.8 * np.log(income / 50_000)
        - 2.5 * (1 + 0.5 * s) * (dti - 0.3)
        - 1.5 * (1 + 0.5 * s) * (util - 0.4)
        - 4.0 * np.maximum(util - 0.8, 0)
        - 4.0 * np.maximum(dti - 0.45, 0)
        - 0.8 * f["delinquencies_2y"]
        - 1.8 * (months < 120) * (1 - months / 120)
        - 0.7 * np.minimum(f["public_records"], 3)
        - 0.2 * f["recent_inquiries"]
        + 0.2 * np.log1p(f["savings"] / 10_000)
        + 0.04 * np.minimum(f["credit_history_years"], 25)
        + 0.02 * np.minimum(f["employment_years"], 20)
        - 0.4 * np.log(f["loan_amount"] / (0.2 * income))
        - 0.0006 * (f["age"] - 45) ** 2
        - 0.2 * (f["loan_term_months"] >= 60)
        + 0.6 * f["has_cosigner"]
        + _PURPOSE_EFFECT[f["loan_purpose"]]
    )


def _subject_ids(start: int, n: int) -> np.ndarray:
    if n == 0:
        return np.empty(0, dtype=object)
    digits = np.arange(start, start + n).astype(str)
    return np.char.add("S", np.char.zfill(digits, 8)).astype(object)


def generate_population(
    n: int, seed: int = 0, *, start_id: int = 0, label_shift: float = 0.0
) -> pd.DataFrame:
    """Generate ``n`` synthetic loan applicants with labels from the documented repayment rule.

    Parameters
    ----------
    n : int
        Number of applicants (rows), >= 0.
    seed : int, default=0
        Seed of the population; the same arguments always give the same frame.
    start_id : int, default=0
        Global index of the first row. Row ``i`` is applicant ``start_id + i``: its
        ``subject_id`` is ``"S%08d" % (start_id + i)`` and its values depend only on ``seed`` and
        that index, so consecutive batches form one population.
    label_shift : float, default=0.0
        Moves the true decision rule to simulate drift between model versions; features are
        unchanged, only ``p_repay`` and ``repaid`` move. Positive values make lending riskier.

    Returns
    -------
    DataFrame of shape (n, 23)
        ``subject_id`` (str), the 20 features of ``SYNTHETIC_SCHEMA`` in order (int64, float64,
        or str for categories; ``has_cosigner`` int 0/1), ``repaid`` (int 0/1) and ``p_repay``
        (float, the true probability of repayment).

    Raises
    ------
    ValueError
        If ``n`` or ``start_id`` is negative.

    Examples
    --------
    >>> df = generate_population(3, seed=1)
    >>> list(df["subject_id"])
    ['S00000000', 'S00000001', 'S00000002']
    """
    if int(n) != n or n < 0:
        raise ValueError(f"n must be a non-negative integer; got {n!r}")
    if int(start_id) != start_id or start_id < 0:
        raise ValueError(f"start_id must be a non-negative integer; got {start_id!r}")
    n, start_id = int(n), int(start_id)
    stop = start_id + n
    first = start_id // _BLOCK
    parts = []
    for block in range(first, max(-(-stop // _BLOCK), first + 1)):  # one block even when n == 0
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), block]))
        feats, u = _features(rng, _BLOCK)
        lo = max(start_id - block * _BLOCK, 0)
        hi = max(min(stop - block * _BLOCK, _BLOCK), lo)
        parts.append(({k: v[lo:hi] for k, v in feats.items()}, u[lo:hi]))
    feats = {k: np.concatenate([p[0][k] for p in parts]) for k in FEATURES}
    u = np.concatenate([p[1] for p in parts])
    p = _sigmoid(repay_logit(feats, label_shift))
    cols: dict[str, object] = {"subject_id": _subject_ids(start_id, n)}
    for k in FEATURES:
        cols[k] = feats[k]
    cols["home_ownership"] = np.asarray(HOME_OWNERSHIP, dtype=object)[feats["home_ownership"]]
    cols["loan_purpose"] = np.asarray(LOAN_PURPOSES, dtype=object)[feats["loan_purpose"]]
    cols[LABEL] = (u < p).astype(np.int64)
    cols["p_repay"] = p
    df = pd.DataFrame(cols)
    text = ["subject_id", *SYNTHETIC_SCHEMA.categorical]
    df[text] = df[text].astype("str")  # same dtype for empty and non-empty frames
    return df
