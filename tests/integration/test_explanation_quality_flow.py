"""Explanation quality through the real flows: PGI/PGU for every denial, RIS/ROS and explainer
agreement on the seeded sample, provenance, idempotence, purge, the redeploy check's
cross-version agreement, the explainer choice the nightly run uses, and `govern history --diff`.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from governance.explain.quality import sample_key
from governance.store.models import Base
from tests.conftest import DEMO_NIGHT, reset_pg
from tests.helpers import read_sql

QUALITY_TABLES = ["explanation_faithfulness", "explanation_stability", "explanation_agreement"]
STABILITY, AGREEMENT = 12, 3


def nightly(dask_cluster, home, url, **kwargs):
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    flow = nightly_governance.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )
    return flow(night=DEMO_NIGHT, home=str(home), db=url, chunk_rows=400, **kwargs)


@pytest.fixture(scope="module")
def ledger(dask_cluster, demo_home, tmp_path_factory):
    """The demo night with a 12-decision stability sample and 3 decisions explained twice."""
    url = f"sqlite:///{tmp_path_factory.mktemp('quality') / 'ledger.db'}"
    summary = nightly(
        dask_cluster, demo_home, url, stability_sample=STABILITY, agreement_sample=AGREEMENT
    )
    return url, summary


def copy_ledger(url: str, to) -> None:
    """A consistent copy of a SQLite ledger: through SQLite's backup API, since in WAL mode the
    main file alone can miss committed changes still in the write-ahead log."""
    import sqlite3

    src = sqlite3.connect(url.removeprefix("sqlite:///"))
    dst = sqlite3.connect(str(to))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def digest(url: str) -> dict[str, list]:
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for name in QUALITY_TABLES:
            t = Base.metadata.tables[name]
            cols = [c for c in t.columns if c.name not in ("run_id", "settings_id")]
            rows = conn.execute(sa.select(*cols)).all()
            out[name] = sorted(json.dumps(list(r), default=str) for r in rows)
    engine.dispose()
    return out


def test_every_denial_has_pgi_and_pgu_under_both_neighbourhoods(ledger):
    url, summary = ledger
    denied = read_sql(url, "SELECT decision_id FROM decisions WHERE decision = 'denied'")
    faith = read_sql(url, "SELECT * FROM explanation_faithfulness")
    reasons = read_sql(url, "SELECT decision_id, COUNT(*) AS n FROM reasons GROUP BY decision_id")
    assert len(denied) > 50
    for perturbation in ("openxai_normal", "background_replacement"):
        rows = faith.loc[faith["perturbation"] == perturbation].set_index("decision_id")
        assert set(rows.index) == set(denied["decision_id"])
        # k is the number of reasons disclosed for that decision.
        k = reasons.set_index("decision_id")["n"].reindex(rows.index).fillna(0)
        assert (rows["k"] == k).all()
        assert (rows.loc[rows["k"] > 0, "pgi"] >= 0).all()
        assert rows["pgu"].notna().all()
    normal = faith.loc[faith["perturbation"] == "openxai_normal"]
    assert normal["pgi_random"].notna().all()
    flagged = normal["pgi"] <= normal["pgi_random"]
    assert (normal["reasons_not_above_random"].astype(bool) == flagged).all()
    assert faith.loc[faith["perturbation"] == "background_replacement", "pgi_random"].isna().all()
    metrics = summary["counts"]["metrics"]
    assert metrics["mean_pgi"] == pytest.approx(normal["pgi"].mean(), abs=1e-6)
    assert metrics["share_reasons_not_above_random"] == pytest.approx(flagged.mean(), abs=1e-6)


def test_the_seeded_sample_gets_ris_ros_and_a_second_explainer(ledger):
    url, _ = ledger
    denied = read_sql(url, "SELECT decision_id FROM decisions WHERE decision = 'denied'")
    keys = sorted(denied["decision_id"], key=sample_key)
    stab = read_sql(url, "SELECT * FROM explanation_stability")
    assert sorted(stab["decision_id"]) == sorted(keys[:STABILITY])
    assert (stab["n_draws"] == 1000).all()
    assert (stab["n_same_class"] <= 100).all() and (stab["n_same_class"] > 0).all()
    assert (stab["neighbourhood_std"] == 0.1).all()  # a tree model: the stated tree scale
    assert stab["ris"].notna().all()
    agree = read_sql(url, "SELECT * FROM explanation_agreement")
    by = agree.groupby("comparison")["decision_id"].apply(sorted)
    assert by["explainer_vs_permutation"] == sorted(keys[:AGREEMENT])
    assert len(by["shap_vs_responsiveness"]) == len(denied)
    resp = agree.loc[agree["comparison"] == "shap_vs_responsiveness"]
    assert resp["sign_agreement"].isna().all()  # responsiveness has no sign
    assert resp["feature_agreement"].between(0, 1).all()


def test_quality_rows_cite_their_settings_with_provenance(ledger):
    url, _ = ledger
    settings = read_sql(url, "SELECT * FROM quality_settings").set_index("id")
    explainers = read_sql(url, "SELECT * FROM explainers")
    for table, metric in (
        ("explanation_faithfulness", "faithfulness"),
        ("explanation_stability", "stability"),
        ("explanation_agreement", "agreement"),
    ):
        ids = read_sql(url, f"SELECT DISTINCT settings_id FROM {table}")["settings_id"]
        assert ids.notna().all() and set(settings.loc[ids, "metric"]) == {metric}
    body = settings.loc[settings["metric"] == "faithfulness", "body"].iloc[0]
    body = json.loads(body) if isinstance(body, str) else body
    assert body["n_samples"] == 100 and body["std"] == 0.1
    assert body["flip_probability"] == pytest.approx(0.0797885, rel=1e-5)
    assert len(body["feature_space"]["scale"]) == 20
    bg = settings.loc[settings["metric"] == "faithfulness", "background_sha256"].iloc[0]
    assert bg is not None and len(bg) == 64
    assert settings["explainer_id"].isin(explainers["id"]).all()


def test_views_give_the_distribution_per_version(ledger):
    from governance.store.engine import make_engine, session_factory
    from governance.store.quality import quality_by_version, reasons_not_above_random

    url, _ = ledger
    engine = make_engine(url)
    with session_factory(engine)() as session:
        table = quality_by_version(session, "credit-default")
        flags = reasons_not_above_random(session, "credit-default")
    engine.dispose()
    row = table.iloc[0]
    denied = read_sql(url, "SELECT COUNT(*) AS n FROM decisions WHERE decision = 'denied'")
    assert row["denials"] == denied["n"][0] and bool(row["own_version"])
    assert row["stability_sampled"] == STABILITY
    assert row["pgi_q25"] <= row["pgi_q50"] <= row["pgi_q75"]
    assert len(flags) == round(row["share_not_above_random"] * row["with_reasons"])


def test_rerun_replaces_exactly_the_same_quality_rows(dask_cluster, demo_home, ledger, tmp_path):
    url, _ = ledger
    copy = tmp_path / "copy.db"
    copy_ledger(url, copy)
    before = digest(url)
    nightly(
        dask_cluster, demo_home, f"sqlite:///{copy}", stability_sample=STABILITY,
        agreement_sample=AGREEMENT, force=True,
    )  # fmt: skip
    assert digest(f"sqlite:///{copy}") == before


def test_purging_a_subject_removes_their_quality_rows(ledger, tmp_path):
    from governance.store.engine import make_engine, session_factory
    from governance.store.purge import purge_subjects

    url, _ = ledger
    copy = tmp_path / "purge.db"
    copy_ledger(url, copy)
    curl = f"sqlite:///{copy}"
    stab = read_sql(curl, "SELECT decision_id FROM explanation_stability")
    subject = read_sql(
        curl,
        "SELECT subject_id FROM decisions WHERE decision_id = :d",
        d=stab["decision_id"].iloc[0],
    )["subject_id"][0]
    engine = make_engine(curl)
    with session_factory(engine).begin() as session:
        removed = purge_subjects(session, [subject])
    engine.dispose()
    assert removed["explanation_faithfulness"] >= 2 and removed["explanation_stability"] >= 1
    for table in QUALITY_TABLES:
        left = read_sql(
            curl,
            f"SELECT COUNT(*) AS n FROM {table} t JOIN decisions d USING (decision_id) "
            "WHERE d.subject_id = :s",
            s=subject,
        )
        orphans = read_sql(
            curl,
            f"SELECT COUNT(*) AS n FROM {table} WHERE decision_id NOT IN "
            "(SELECT decision_id FROM decisions)",
        )
        assert left["n"][0] == 0 and orphans["n"][0] == 0


def test_postgresql_stores_the_same_quality_rows(dask_cluster, demo_home, pg_url):
    reset_pg(pg_url)
    nightly(dask_cluster, demo_home, pg_url, stability_sample=5, agreement_sample=0)
    faith = read_sql(pg_url, "SELECT * FROM explanation_faithfulness")
    denied = read_sql(pg_url, "SELECT COUNT(*) AS n FROM decisions WHERE decision = 'denied'")
    assert len(faith) == 2 * denied["n"][0]
    assert len(read_sql(pg_url, "SELECT * FROM explanation_stability")) == 5
    view = read_sql(pg_url, "SELECT * FROM v_explanation_quality_by_version")
    assert view["denials"][0] == denied["n"][0]


def test_a_chosen_explainer_is_the_one_the_nightly_run_uses(dask_cluster, demo_home, tmp_path):
    from governance.registry.model_registry import ModelRegistry
    from governance.store import init_store, writes
    from governance.store.engine import session_factory

    url = f"sqlite:///{tmp_path / 'chosen.db'}"
    engine = init_store(url)
    manifest = ModelRegistry(demo_home / "registry").manifest("credit-default", "v1")
    with session_factory(engine).begin() as session:
        mv = writes.ensure_model_version(session, manifest)
        writes.record_explainer_choice(
            session, mv, "tree_interventional", rule="test", evidence={}, sample_rows=0, seed=0
        )
    engine.dispose()
    nightly(dask_cluster, demo_home, url, stability_sample=0, agreement_sample=0)
    used = read_sql(
        url,
        "SELECT DISTINCT x.settings FROM explanations e JOIN explainers x ON x.id = e.explainer_id",
    )
    assert len(used) == 1
    settings = used["settings"][0]
    settings = json.loads(settings) if isinstance(settings, str) else settings
    assert settings["feature_perturbation"] == "interventional"


@pytest.fixture(scope="module")
def redeployed(dask_cluster, demo_home, ledger, tmp_path_factory):
    """The quality ledger after the redeploy check of v2 (a copy; v1's rows stay)."""
    from prefect_dask import DaskTaskRunner

    from flows.redeploy import redeploy_check

    url, _ = ledger
    copy = tmp_path_factory.mktemp("redeploy") / "ledger.db"
    copy_ledger(url, copy)
    curl = f"sqlite:///{copy}"
    flow = redeploy_check.with_options(
        task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address)
    )
    summary = flow(
        model="credit-default", version="v2", home=str(demo_home), db=curl,
        recent_days=100_000, window_months=1_000, variants=0, gate=1.0,
    )  # fmt: skip
    return curl, summary


def test_redeploy_check_stores_agreement_across_versions(redeployed):
    url, summary = redeployed
    compared = read_sql(url, "SELECT * FROM version_comparisons")
    agree = read_sql(
        url, "SELECT * FROM explanation_agreement WHERE comparison = 'version_vs_previous'"
    )
    assert len(agree) == len(compared) > 0
    assert set(agree["other_model_version_id"]) == set(compared["old_model_version_id"])
    merged = agree.merge(compared, on=["decision_id", "model_version_id"])
    # The reason lists' agreement is the one version_comparisons already recorded.
    assert (merged["reasons_feature_agreement"] == merged["feature_agreement_y"]).all()
    drift = summary["counts"]["explanation_drift"]
    still = merged.loc[merged["new_status"] != "approved"]
    assert drift["denied_under_both"] == len(still)
    assert drift["share_top4_changed"] == pytest.approx(
        (still["reasons_feature_agreement"] < 1).mean(), abs=1e-6
    )
    assert drift["share_top1_changed"] == pytest.approx((~still["top1_same"].astype(bool)).mean(),
                                                        abs=1e-6)
    assert 0 < drift["attribution_ndcg"] <= 1
    faith_v2 = read_sql(
        url,
        "SELECT f.decision_id FROM explanation_faithfulness f JOIN decisions d "
        "USING (decision_id) WHERE f.model_version_id != d.model_version_id "
        "AND f.perturbation = 'openxai_normal'",
    )
    assert len(faith_v2) == len(still)


def test_history_diff_shows_reasons_changing_across_versions(redeployed, demo_home, capfd):
    from tests.reliability.conftest import run_govern

    url, _ = redeployed
    changed = read_sql(
        url,
        "SELECT d.subject_id FROM explanation_agreement a JOIN decisions d USING (decision_id) "
        "WHERE a.comparison = 'version_vs_previous' AND a.reasons_rank_agreement < 1 "
        "ORDER BY d.subject_id LIMIT 1",
    )["subject_id"][0]
    args = ["history", "--subject", changed, "--diff", "--db", url, "--home", str(demo_home)]
    code, out, err = run_govern(args, capfd)
    assert code == 0, err
    assert "v1 → v2" in out
    assert any(word in out for word in ("appeared:", "disappeared:", "rank moved:"))
    assert "PGI" in out and "agreement: top-4 set" in out
    code, out, err = run_govern([*args, "--json"], capfd)
    data = json.loads(out)
    pair = next(p for p in data["pairs"] if p["kind"] == "re-explained")
    assert pair["from"]["model_version"] == "v1" and pair["to"]["model_version"] == "v2"
    assert any(pair["changes"].values())
    assert "openxai_normal" in pair["to"]["quality"]["faithfulness"]


def test_explainers_quality_command_reads_the_views(redeployed, demo_home, capfd):
    from tests.reliability.conftest import run_govern

    url, _ = redeployed
    where = ["--db", url, "--home", str(demo_home)]
    code, out, err = run_govern(["explainers", "quality", "--flagged", "3", *where], capfd)
    assert code == 0, err
    assert "Explanation quality by model version" in out and "(re-explained)" in out
    code, out, err = run_govern(["explainers", "quality", "--json", *where], capfd)
    rows = pd.DataFrame(json.loads(out)["by_version"])
    assert set(rows["model_version"]) == {"v1", "v2"}


def test_explainers_compare_prints_stores_and_shows_the_choice(demo_home, tmp_path, capfd):
    from tests.reliability.conftest import run_govern

    url = f"sqlite:///{tmp_path / 'compare.db'}"
    where = ["--db", url, "--home", str(demo_home)]
    args = [
        "explainers", "compare", "--model", "credit-default", "v1", "--sample", "4",
        "--stability-rows", "2", "--permutation-stability-rows", "0", *where,
    ]  # fmt: skip
    code, out, err = run_govern(args, capfd)
    assert code == 0, err
    assert "Explainers of credit-default v1" in out and "Recommended:" in out
    for kind in ("tree", "tree_interv.", "permutation"):
        assert kind in out
    code, out, err = run_govern(["explainers", "show", "credit-default", "v1", "--json", *where],
                                capfd)
    choice = json.loads(out)
    assert choice["kind"] in ("tree", "tree_interventional", "permutation")
    assert {c["kind"] for c in choice["evidence"]["candidates"]} == {
        "tree", "tree_interventional", "permutation"
    }
    assert choice["sample_rows"] == 4



def test_history_shows_the_random_control_flag(ledger, demo_home, capfd):
    from tests.reliability.conftest import run_govern

    url, _ = ledger
    flagged = read_sql(
        url,
        "SELECT d.subject_id FROM explanation_faithfulness f JOIN decisions d USING "
        "(decision_id) WHERE f.reasons_not_above_random ORDER BY d.subject_id LIMIT 1",
    )["subject_id"][0]
    where = ["--db", url, "--home", str(demo_home)]
    code, out, err = run_govern(["history", "--subject", flagged, *where], capfd)
    assert code == 0, err
    assert "faithfulness: PGI" in out and "≤ random!" in out
    code, out, err = run_govern(["history", "--subject", flagged, "--json", *where], capfd)
    records = json.loads(out)["decisions"]
    assert any((r["faithfulness"] or {}).get("reasons_not_above_random") for r in records)
