"""`govern models import`, `govern log check` and `govern action-set`: exit codes and one-line
errors, as a user meets them (run in this process: none of them starts a flow)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from tests.reliability.conftest import run_govern


@pytest.fixture
def govern(capfd):
    def run(*args: str, home: Path) -> SimpleNamespace:
        code, out, err = run_govern([*args, "--home", str(home)], capfd)
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


@pytest.fixture
def imported(tmp_path, govern):
    folder = tmp_path
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"months_low": rng.integers(0, 7, 200),
                         "months_high": rng.integers(0, 7, 200),
                         "home": rng.choice(["RENT", "OWN"], 200)})
    data["y"] = (data["months_low"] + data["months_high"] > 5).astype(int)
    pipe = Pipeline([("pre", ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["home"])], remainder="passthrough")),
        ("model", LogisticRegression())]).fit(data.drop(columns="y"), data["y"])
    sio.dump(pipe, folder / "model.skops")
    data.to_csv(folder / "sample.csv", index=False)
    (folder / "model.pkl").write_bytes(b"\x80\x04not really")
    home = folder / "home"
    result = govern("models", "import", "m", "v1", "--artifact", str(folder / "model.skops"),
                    "--reference-data", str(folder / "sample.csv"), home=home)
    assert result.returncode == 0, result.stderr
    assert "imported m v1" in result.stdout and "not deployed" in result.stdout
    return folder, home


def test_a_pickle_without_trust_is_one_line_and_exit_2(imported, govern):
    folder, home = imported
    result = govern("models", "import", "m", "v2", "--artifact", str(folder / "model.pkl"),
                    "--reference-data", str(folder / "sample.csv"), home=home)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--trust-pickle" in result.stderr
    assert not (home / "registry" / "m" / "v2").exists()


def test_log_check_exits_3_when_rows_would_be_quarantined(imported, govern):
    folder, home = imported
    log = pd.DataFrame({
        "decision_id": ["a", "b"], "subject_id": ["s", "t"],
        "decided_at": ["2026-11-03T10:00:00Z", "2026-11-03T11:00:00Z"],
        "model_name": "m", "model_version": "v1", "months_low": [1, "many"],
        "months_high": [2, 3], "home": ["RENT", "OWN"], "score": [0.2, 0.3],
        "decision": ["denied", "denied"],
    })
    log.to_csv(folder / "log.csv", index=False)
    result = govern("log", "check", str(folder / "log.csv"), "--model", "m", "v1", "--json",
                    home=home)
    assert result.returncode == 3, result.stderr
    night = json.loads(result.stdout)["nights"][0]
    assert (night["rows"], night["quarantined"], night["status"]) == (2, 1, "failed")
    log.loc[1, "months_low"] = 4
    log.to_csv(folder / "log.csv", index=False)
    ok = govern("log", "check", str(folder / "log.csv"), "--model", "m", "v1", home=home)
    assert ok.returncode == 0 and "ok" in ok.stdout
    (folder / "log.txt").write_text("x")
    bad = govern("log", "check", str(folder / "log.txt"), "--model", "m", "v1", home=home)
    assert bad.returncode == 2 and "cannot tell the format" in bad.stderr


def test_action_set_draft_check_and_attach(imported, govern):
    folder, home = imported
    out = folder / "actions.json"
    draft = govern("action-set", "draft", "--model", "m", "v1", "--data",
                   str(folder / "sample.csv"), "--immutable", "home", "--out", str(out),
                   home=home)
    assert draft.returncode == 0, draft.stderr
    d = json.loads(out.read_text())
    d["constraints"] = [{"type": "linear", "names": ["months_low", "months_high"],
                         "coefficients": [1, 1], "bound": 6}]
    out.write_text(json.dumps(d))
    # rows of the sample break the new bound: exit 3, nothing attached
    broken = govern("action-set", "check", str(out), "--model", "m", "v1", "--data",
                    str(folder / "sample.csv"), "--attach", "--json", home=home)
    assert broken.returncode == 3
    report = json.loads(broken.stdout)
    assert report["violations"] > 0 and report["attached"] is False
    table = govern("action-set", "check", str(out), "--model", "m", "v1", home=home)
    assert table.returncode == 0
    assert "must be at most 6 after any action" in table.stdout
    attach = govern("action-set", "check", str(out), "--model", "m", "v1", "--attach",
                    home=home)
    assert attach.returncode == 0 and "attached" in attach.stdout
    manifest = json.loads((home / "registry" / "m" / "v1" / "manifest.json").read_text())
    assert manifest["action_set"]["file"] == "action_set.json"
    d["features"][0]["step_direction"] = 5
    out.write_text(json.dumps(d))
    bad = govern("action-set", "check", str(out), "--model", "m", "v1", home=home)
    assert bad.returncode == 2 and "features/0/step_direction" in bad.stderr


def test_import_takes_a_file_or_an_mlflow_uri_and_says_what_is_missing(
    imported, govern, monkeypatch
):
    folder, home = imported
    sample = str(folder / "sample.csv")
    both = govern("models", "import", "m", "v3", "--artifact", str(folder / "model.skops"),
                  "--from", "models:/m@champion", "--reference-data", sample, home=home)
    assert both.returncode == 2 and "exactly one of --artifact" in both.stderr
    bad = govern("models", "import", "m", "v3", "--from", "runs:/abc/model",
                 "--reference-data", sample, home=home)
    assert bad.returncode == 2 and "not an MLflow model URI" in bad.stderr
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    no_server = govern("models", "import", "m", "v3", "--from", "models:/m@champion",
                       "--reference-data", sample, home=home)
    assert no_server.returncode == 2 and "set MLFLOW_TRACKING_URI" in no_server.stderr
    for result in (both, bad, no_server):
        assert result.stderr.count("\n") == 1, result.stderr
    assert not (home / "registry" / "m" / "v3").exists()
