"""Counts of re-validated recourse add up over slices to exactly what one pass over every row
reports (the redeploy check tallies each slice on the worker that checked it)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from governance.retraining import ValidityTally, calibration_table


def _one_pass(df: pd.DataFrame, segment: str) -> dict:
    """The summary computed over every row at once, with pandas' own group-bys."""
    n = len(df)
    valid = df["valid"].astype(bool)
    out = {
        "recourses_checked": n,
        "invalidated": int((~valid).sum()),
        "invalidation_rate": round(float((~valid).mean()), 6),
    }
    pairs = pd.DataFrame(
        {"feature": df["changed"].fillna("").str.split(","), "invalid": ~valid}
    ).explode("feature")
    pairs = pairs[pairs["feature"] != ""]
    by_feature = pairs.groupby("feature")["invalid"].agg(["size", "sum"])
    out["invalidation_by_feature"] = {
        f: {"recourses": int(a), "invalidated": int(b), "rate": round(b / a, 6)}
        for f, (a, b) in by_feature.sort_values("sum", ascending=False).iterrows()
    }
    out["segment"] = segment
    out["invalidation_by_segment"] = {
        str(k): {"recourses": int(len(g)), "rate": round(float((~g).mean()), 6)}
        for k, g in valid.groupby(df["segment"].astype(str))
    }
    out["invalidation_by_kind"] = {
        k: round(float((~g).mean()), 6) for k, g in valid.groupby(df["kind"])
    }
    out["mean_forward_validity"] = round(float(df["forward_validity"].mean()), 6)
    alt = df["alternative_valid"].dropna()
    out["alternative_validity"] = {
        "issued": round(float(valid.loc[alt.index].mean()), 6),
        "alternative": round(float(alt.astype(bool).mean()), 6),
        "alternative_kind": "minimal",
    }
    return out


def _rows(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    features = ["income", "debt", "utilisation", "cosigner"]
    changed = [
        ",".join(sorted(rng.choice(features, size=rng.integers(0, 3), replace=False)))
        for _ in range(n)
    ]
    alt = np.where(rng.random(n) < 0.2, rng.random(n) < 0.5, None)
    fv = rng.integers(0, 11, n) / 10
    fv[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "valid": rng.random(n) < 0.7,
            "kind": rng.choice(["minimal", "robust"], n),
            "changed": [c or None for c in changed],
            "segment": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
            "forward_validity": fv,
            "alternative_valid": alt,
            "stability": np.where(rng.random(n) < 0.9, rng.random(n), np.nan),
        }
    )


def _tally(df: pd.DataFrame) -> ValidityTally:
    return ValidityTally.of(
        df["valid"].to_numpy(),
        df["kind"].tolist(),
        df["changed"].tolist(),
        segment=df["segment"].tolist(),
        forward_validity=df["forward_validity"].to_numpy(),
        alternative_valid=df["alternative_valid"].tolist(),
        stability=df["stability"].to_numpy(),
    )


def test_slices_tallied_apart_report_what_one_pass_reports():
    df = _rows(5_000)
    cuts = [0, 1_234, 1_235, 4_000, 5_000]  # uneven, one slice of a single row
    total = ValidityTally()
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        total = total + _tally(df.iloc[lo:hi])
    assert total.summary("home") == _one_pass(df, "home")


def test_calibration_from_merged_slices_is_bit_identical():
    df = _rows(3_000, seed=9)
    total = _tally(df.iloc[:1_000]) + _tally(df.iloc[1_000:])
    known = df["stability"].notna()
    whole = calibration_table(
        df.loc[known, "stability"].to_numpy(), df.loc[known, "valid"].astype(float).to_numpy()
    )
    merged = calibration_table(total.stability, total.stability_valid)
    pd.testing.assert_frame_equal(merged, whole, check_exact=True)


def test_an_empty_tally_reports_no_rate():
    assert ValidityTally().summary("home") == {
        "recourses_checked": 0, "invalidated": 0, "invalidation_rate": None,
    }
