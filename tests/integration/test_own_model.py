"""A lender's own models on German credit, governed from the README's commands: import a fitted
Pipeline and a histogram gradient boosting model, draft and check their action set, check and
run a night of a CSV decision log, read history and recourse; the same Pipeline trained by the
product's recipe gives the same results, row for row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import sqlalchemy as sa
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from bench.ledger_diff import diff_ledgers, differs
from governance.exceptions import DatasetUnavailable
from governance.registry.importing import import_fitted
from governance.registry.model_registry import ModelRegistry
from governance.registry.registration import register_from_data
from governance.registry.schema import FeatureSchema
from governance.registry.training import TrainingRecipe

GOVERN = str(Path(sys.executable).with_name("govern"))
NIGHT = date(2026, 11, 3)
IMMUTABLE = (
    "age_years,personal_status_and_sex,foreign_worker,num_people_liable_for_maintenance,"
    "present_residence_since,job,telephone,other_debtors_guarantors,property,housing,purpose,"
    "credit_history,present_employment_since,other_installment_plans"
)
COLUMNS = "decision_id=app_id,subject_id=customer"
LOG_ROWS = 120


def govern(*args: str, home: Path, server: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if server:
        env["PREFECT_API_URL"] = server
    return subprocess.run([GOVERN, *args, "--home", str(home)], capture_output=True, text=True,
                          timeout=600, env=env)


def _json(result: subprocess.CompletedProcess):
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def lender(tmp_path_factory):
    """The lender's own files: two fitted models, training data and a night's CSV log."""
    from governance.data.real import load_german

    try:
        german = load_german()
    except DatasetUnavailable as exc:
        pytest.skip(str(exc))
    folder = tmp_path_factory.mktemp("lender")
    X, y = german.X, german.y
    n_train = len(X) - LOG_ROWS
    train = X.iloc[:n_train].assign(subject_id=[f"T{i:04d}" for i in range(n_train)],
                                    credit_risk=y[:n_train])
    train.to_csv(folder / "training.csv", index=False)
    # the recipe's copy keeps the codebook's category order, as the lender's encoder does
    codebook = {c: pd.CategoricalDtype(list(german.schema[c].categories))
                for c in german.schema.categorical}
    train.astype(codebook).to_parquet(folder / "training.parquet")
    schema = FeatureSchema.from_frame(train.drop(columns=["subject_id", "credit_risk"]).astype(
        codebook))
    numeric, categorical = schema.numeric, schema.categorical
    # the lender's own Pipeline, written as they would
    pipeline = Pipeline([
        ("pre", ColumnTransformer(
            [("num", StandardScaler(), numeric),
             ("cat", OneHotEncoder(categories=[list(schema[c].categories) for c in categorical],
                                   handle_unknown="ignore", sparse_output=False), categorical)],
            verbose_feature_names_out=False)),
        ("model", LogisticRegression(random_state=0)),
    ])
    features = train[schema.names]
    pipeline.fit(features, train["credit_risk"])
    sio.dump(pipeline, folder / "pipeline.skops")
    typed = features.astype({c: pd.CategoricalDtype(list(schema[c].categories))
                             for c in categorical})
    hgb = HistGradientBoostingClassifier(max_iter=30, max_leaf_nodes=15, random_state=0,
                                         categorical_features="from_dtype")
    hgb.fit(typed, train["credit_risk"])
    sio.dump(hgb, folder / "hgb.skops")
    # tonight's applicants, decided by either model, logged with the lender's column names
    apply = X.iloc[n_train:].reset_index(drop=True)
    p_lr = pipeline.predict_proba(apply[schema.names])[:, 1]
    p_hgb = hgb.predict_proba(apply[schema.names].astype(typed.dtypes.to_dict()))[:, 1]
    by_hgb = np.arange(len(apply)) % 3 == 0
    score = np.where(by_hgb, p_hgb, p_lr)
    start = datetime.combine(NIGHT, datetime.min.time(), tzinfo=UTC)
    log = pd.DataFrame({
        "app_id": [f"G{i:05d}" for i in range(len(apply))],
        "customer": [f"C{i:05d}" for i in range(len(apply))],
        "decided_at": [(start + timedelta(minutes=7 * i)).isoformat() for i in range(len(apply))],
        "model_name": np.where(by_hgb, "credit-hgb", "credit"),
        "model_version": "v1",
        **{c: apply[c] for c in schema.names},
        "score": score,
        "decision": np.where(score >= 0.5, "approved", "denied"),
    })
    log.to_csv(folder / "decisions.csv", index=False)
    return {"folder": folder, "schema": schema, "pipeline": pipeline, "log": log}


@pytest.fixture(scope="module")
def governed(lender, prefect_server):
    """Ledger A: the README's commands, run as a user runs them."""
    folder = lender["folder"]
    home = folder / "home-imported"
    reports = {}
    for name, artifact in (("credit", "pipeline.skops"), ("credit-hgb", "hgb.skops")):
        reports[name] = _json(govern(
            "models", "import", name, "v1", "--artifact", str(folder / artifact),
            "--reference-data", str(folder / "training.csv"),
            "--training-data", str(folder / "training.csv"), "--label", "credit_risk",
            "--id-column", "subject_id", "--json", home=home))
    # one action set per model: each lists categories in its own model's order
    actions, checks = {}, {}
    for name in ("credit", "credit-hgb"):
        actions[name] = folder / f"actions-{name}.json"
        draft = govern("action-set", "draft", "--model", name, "v1", "--data",
                       str(folder / "training.csv"), "--immutable", IMMUTABLE, "--out",
                       str(actions[name]), home=home)
        assert draft.returncode == 0, draft.stderr
        checks[name] = _json(govern("action-set", "check", str(actions[name]), "--model", name,
                                    "v1", "--data", str(folder / "training.csv"), "--attach",
                                    "--json", home=home))
    log_check = govern("log", "check", f"csv:{folder / 'decisions.csv'}", "--model", "credit",
                       "v1", "--columns", COLUMNS, "--json", home=home)
    nightly = govern("nightly", "--date", NIGHT.isoformat(), "--log",
                     f"csv:{folder / 'decisions.csv'}", "--columns", COLUMNS, "--workers", "1",
                     home=home, server=prefect_server)
    assert nightly.returncode == 0, nightly.stdout + nightly.stderr
    return {"home": home, "reports": reports, "actions": actions, "checks": checks,
            "log_check": log_check}


def test_imports_report_exact_paths_and_reproduced_recipes(governed):
    lr, hgb = governed["reports"]["credit"], governed["reports"]["credit-hgb"]
    assert lr["exact_paths"]["structure"] == "linear"
    assert lr["exact_paths"]["verification"] == "exact"
    assert hgb["exact_paths"]["structure"] == "tree"
    assert hgb["exact_paths"]["stability_replay"] == "exact"
    assert hgb["category_input"] == "category"
    for report in (lr, hgb):
        assert report["recipe_check"]["status"] == "reproduced"
        assert report["unavailable"] == []


def test_the_drafted_action_set_is_checked_and_attached(governed):
    for check in governed["checks"].values():
        assert check["attached"] and check["violations"] == 0
        allows = {f["feature"]: f["allows"] for f in check["features"]}
        assert allows["age_years"] == "immutable"
        assert allows["credit_amount"].endswith("step 100")
        assert "version (still 'draft')" in check["pending_review"]


def test_log_check_validates_the_csv_against_the_model_without_running(governed, lender):
    result = governed["log_check"]
    assert result.returncode == 0, result.stdout + result.stderr
    night = json.loads(result.stdout)["nights"][0]
    lr_rows = int((lender["log"]["model_name"] == "credit").sum())
    assert (night["rows"], night["quarantined"]) == (lr_rows, 0)
    assert night["other_models"] == LOG_ROWS - lr_rows


def test_a_night_of_the_csv_log_is_explained_with_recourse(governed, lender):
    home = governed["home"]
    runs = _json(govern("runs", "--json", home=home))
    night = runs[0]
    assert (night["kind"], night["status"]) == ("nightly", "succeeded")
    log = lender["log"]
    denied = log.loc[log["decision"] == "denied"]
    subject = denied["customer"].iloc[0]
    history = _json(govern("history", "--subject", subject, "--json", home=home))
    decision = history["decisions"][0]
    assert decision["decision_id"] == denied["app_id"].iloc[0]
    assert 1 <= len(decision["reasons"]) <= 4
    assert decision["recourse_status"] in {"recourse", "fixed", "undetermined"}
    for model in ("credit", "credit-hgb"):
        who = denied.loc[denied["model_name"] == model, "customer"].iloc[0]
        recourse = _json(govern("recourse", "--subject", who, "--json", home=home))
        record = recourse["decisions"][0]
        assert record["model"] == model
        assert record["verification"]["status"] in {"recourse", "fixed"}
        assert record["action_set"]["sha256"]
        if record["verification"]["status"] == "recourse":
            changed = {c["feature"] for c in record["recourse"]["changes"]}
            assert changed and not changed & set(IMMUTABLE.split(","))


def test_values_beyond_the_training_range_are_processed_and_flagged(governed, lender):
    log = lender["log"]
    train = pd.read_csv(lender["folder"] / "training.csv")
    expected = {}
    for _, row in log.iterrows():
        out = [c for c in lender["schema"].numeric
               if not train[c].min() <= row[c] <= train[c].max()]
        if out:
            expected[row["app_id"]] = out
    assert expected  # held-out applicants do leave the observed range
    engine = sa.create_engine(f"sqlite:///{governed['home'] / 'governance.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT decision_id, out_of_range FROM decisions WHERE out_of_range IS NOT NULL "
            "AND out_of_range != 'null'")).all()
        quarantined = conn.execute(sa.text("SELECT COUNT(*) FROM quarantine")).scalar()
    engine.dispose()
    assert {d: sorted(json.loads(v)) for d, v in rows} == {
        d: sorted(v) for d, v in expected.items()
    }
    assert quarantined == 0


def test_the_same_pipeline_trained_by_the_recipe_gives_the_same_results(
    governed, lender, run_nightly
):
    folder, schema = lender["folder"], lender["schema"]
    home = folder / "home-recipe"
    reg = ModelRegistry(home / "registry")
    recipe = TrainingRecipe("logistic_regression", seed=0, label="credit_risk")
    assert str(recipe.build(schema)) == str(lender["pipeline"])  # the lender's own steps
    register_from_data(reg, "credit", "v1", folder / "training.parquet", label="credit_risk",
                       estimator="logistic_regression", seed=0, features=schema.names,
                       action_set=governed["actions"]["credit"])
    import_fitted(reg, "credit-hgb", "v1", folder / "hgb.skops",
                  reference=folder / "training.csv", training=folder / "training.csv",
                  label="credit_risk", id_column="subject_id",
                  action_set=governed["actions"]["credit-hgb"])
    db = f"sqlite:///{home / 'governance.db'}"
    summary = run_nightly(NIGHT, home, db, log=f"csv:{folder / 'decisions.csv'}",
                          columns=dict(c.split("=") for c in COLUMNS.split(",")))
    assert summary["status"] == "succeeded"
    report = diff_ledgers(
        f"sqlite:///{governed['home'] / 'governance.db'}", db,
        # the version records (artifact hash, manifest: recipe, source) differ, results do not;
        # so do the provenance and quality-settings records keyed on those hashes
        ignore=[
            "model_versions.artifact_sha256", "model_versions.manifest", "provenance_id",
            "settings_id", "result_provenance.sha256", "result_provenance.settings",
            "result_provenance.settings_sha256", "quality_settings.sha256",
            "quality_settings.body",
        ],
    )
    assert not differs(report), {t: r for t, r in report.items() if r.get("only_left")}
    assert report["decisions"]["left"] == LOG_ROWS
    assert report["issued_recourse"]["left"] > 0


def test_a_night_without_rows_is_reported_empty(governed, lender, run_nightly):
    folder = lender["folder"]
    home = governed["home"]
    summary = run_nightly(NIGHT + timedelta(days=1), home, f"sqlite:///{home / 'governance.db'}",
                          log=f"csv:{folder / 'decisions.csv'}",
                          columns=dict(c.split("=") for c in COLUMNS.split(",")))
    assert summary["status"] == "empty" and summary["counts"]["pulled"] == 0
    engine = sa.create_engine(f"sqlite:///{home / 'governance.db'}")
    with engine.connect() as conn:
        status = conn.execute(sa.text(
            "SELECT status FROM runs WHERE night = :n"), {"n": str(NIGHT + timedelta(days=1))}
        ).scalar()
    engine.dispose()
    assert status == "empty"
