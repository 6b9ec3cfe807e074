"""Calibration of stability against realised validity: literal tables and Wilson intervals."""

import numpy as np
import pytest

from governance.exceptions import RobustnessError
from governance.retraining.calibration import (
    COLUMNS,
    DEFAULT_BINS,
    calibration_table,
    wilson_interval,
)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(np.array([8, 0, 10]), np.array([10, 10, 10]))
    np.testing.assert_allclose(lo, [0.4902, 0.0, 0.7225], atol=1e-4)
    np.testing.assert_allclose(hi, [0.9433, 0.2775, 1.0], atol=1e-4)
    lo, hi = wilson_interval(0, 0)
    assert np.isnan(lo) and np.isnan(hi)


def test_literal_table():
    R = np.array([0.1, 0.55, 0.74, 0.75, 0.8, 0.99, 1.0, np.nan])
    valid = np.array([0, 1, 0, 1, 1, 1, 1, 0])
    t = calibration_table(R, valid, bins=(0.0, 0.5, 0.75, 1.0))
    assert list(t.columns) == list(COLUMNS)
    assert t["bin"].tolist() == ["[0, 0.5)", "[0.5, 0.75)", "[0.75, 1]"]
    assert t["n"].tolist() == [1, 2, 4]  # 0.75 opens the top bin; 1.0 closes it; NaN left out
    assert t["n_valid"].tolist() == [0, 1, 4]
    assert t["validity"].tolist() == [0.0, 0.5, 1.0]
    np.testing.assert_allclose(t["mean_R"], [0.1, 0.645, (0.75 + 0.8 + 0.99 + 1.0) / 4])
    lo, hi = wilson_interval(np.array([0, 1, 4]), np.array([1, 2, 4]))
    np.testing.assert_allclose(t["ci_low"], lo)
    np.testing.assert_allclose(t["ci_high"], hi)


def test_empty_bins_are_kept_and_unknown_validity_is_left_out():
    t = calibration_table(np.array([0.9, 0.95, 0.2]), np.array([1.0, np.nan, 0.0]))
    assert len(t) == len(DEFAULT_BINS) - 1
    assert t["n"].sum() == 2
    empty = t[t["n"] == 0]
    assert empty["validity"].isna().all() and empty["mean_R"].isna().all()
    assert empty["ci_low"].isna().all()
    assert t.loc[t["bin"] == "[0.9, 0.95)", "n_valid"].item() == 1


def test_booleans_are_accepted():
    t = calibration_table(np.array([0.2, 0.9]), np.array([False, True]), bins=(0, 0.5, 1))
    assert t["validity"].tolist() == [0.0, 1.0]


@pytest.mark.parametrize(
    ("R", "valid", "bins", "match"),
    [
        (np.array([0.5]), np.array([1, 0]), DEFAULT_BINS, "same length; got 1 and 2"),
        (np.array([0.5]), np.array([2]), DEFAULT_BINS, "must be 0, 1 or NaN"),
        (np.array([0.5]), np.array([1]), (0.0, 0.0, 1.0), "strictly increasing"),
        (np.array([0.5]), np.array([1]), (0.0,), "strictly increasing"),
        (np.array([1.5]), np.array([1]), (0.0, 1.0), "1.5 lies outside the bins"),
    ],
)
def test_errors(R, valid, bins, match):
    with pytest.raises(RobustnessError, match=match):
        calibration_table(R, valid, bins)
