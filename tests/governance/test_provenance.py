"""What keys a nightly chunk's rows: every setting that changes them, normalised, and the code."""

from __future__ import annotations

import pytest

from governance.provenance import (
    code_identity,
    provenance_sha256,
    result_settings,
)
from governance.recourse.search import MAX_POINTS


def test_two_spellings_of_the_same_settings_are_one():
    default = result_settings({})
    assert default["max_points"] == MAX_POINTS and default["recourse"] is True
    spelled = result_settings({"max_points": MAX_POINTS, "n_samples": 500.0, "seed": 0})
    assert spelled == default
    assert result_settings(default) == default  # what the flow passes on is kept as it is


def test_a_switched_off_stage_has_no_settings_to_differ_in():
    off = result_settings({"recourse": False, "n_samples": 50, "max_points": 8})
    assert off == result_settings({"recourse": False})
    assert off["stability"] is False and off["n_samples"] is None
    no_stability = result_settings({"stability": False, "stability_k": 10})
    assert no_stability["stability_k"] is None and no_stability["n_samples"] == 500


@pytest.mark.parametrize(
    "change",
    [
        {"n_samples": 100},
        {"seed": 1},
        {"max_points": 64},
        {"stability": False},
        {"stability_k": 200},
        {"stability_sigma": 0.1},
        {"robust_tau": 0.75},
        {"explainer_background_size": 50},
        {"explainer_seed": 3},
        {"top_k": 3},
        {"score_mismatch": "quarantine"},
    ],
)
def test_every_setting_that_changes_rows_changes_the_provenance(change):
    code = code_identity()
    base = provenance_sha256(result_settings({}), code)
    assert provenance_sha256(result_settings(change), code) != base


def test_model_inputs_and_code_change_the_provenance():
    code = code_identity()
    settings = result_settings({}, {"training_sha256": "a" * 64})
    base = provenance_sha256(settings, code)
    purged = result_settings({}, {"training_sha256": "b" * 64})  # an erasure rewrote it
    assert provenance_sha256(purged, code) != base
    assert provenance_sha256(settings, {**code, "code_version": "0.2.0"}) != base
    newer = {**code, "libraries": {**code["libraries"], "shap": "99.0"}}
    assert provenance_sha256(settings, newer) != base


def test_an_unknown_mismatch_policy_is_refused():
    with pytest.raises(ValueError, match="score_mismatch 'ignore' is not one of flag"):
        result_settings({"score_mismatch": "ignore"})
