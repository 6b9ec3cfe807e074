"""The demo lender: a synthetic population, a registered model and a few nights of decision logs.

Everything is derived from one seed, so two demo set-ups are identical; a second call reuses
what the first wrote.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, roc_auc_score

from governance import config
from governance.data.synthetic import (
    FAVOURABLE,
    LABEL,
    SYNTHETIC_CODEBOOK,
    SYNTHETIC_SCHEMA,
    generate_population,
)
from governance.hashing import sha256_file
from governance.intake.decision_log import DECIDED_AT, ID, ParquetDecisionLog, make_decisions
from governance.recourse.action_set import BUNDLED
from governance.registry.codebook import CODEBOOK, save_codebook
from governance.registry.model_registry import ModelRegistry, TrainingData
from governance.registry.training import TrainingRecipe

MODEL_NAME = "credit-default"
ACTION_SETS = BUNDLED
DEMO_RECIPE = TrainingRecipe(
    estimator="hist_gradient_boosting",
    # Small trees keep every model call (SHAP, recourse search, stability) cheap; on this
    # population they lose under 0.01 AUC against the default 100 x 31-leaf ensemble.
    params={"max_iter": 100, "learning_rate": 0.15, "max_leaf_nodes": 15, "early_stopping": False},
    seed=20261125,
    label=LABEL,
)
V2_LABEL_SHIFT = 0.6
Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoSetup:
    """What the demo prepared: where it lives and which nights to run."""

    home: Path
    model_name: str
    version: str
    nights: list[date]
    rows_per_night: int


def default_nights(days: int, today: date | None = None) -> list[date]:
    """The ``days`` nights ending yesterday (UTC)."""
    today = today or datetime.now(UTC).date()
    return [today - timedelta(days=days - i) for i in range(days)]


def train_model(
    registry: ModelRegistry,
    name: str,
    version: str,
    train: pd.DataFrame,
    recipe: TrainingRecipe,
    *,
    data_dir: Path,
    test: pd.DataFrame | None = None,
    action_set: Path | None = None,
    parent: str | None = None,
    notes: str = "",
    threshold: float = 0.5,
):
    """Write the training data, fit the recipe, measure it on ``test`` and register the version."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}-{version}.parquet"
    train.to_parquet(path, index=False)
    estimator = recipe.fit(SYNTHETIC_SCHEMA, train, train[recipe.label].to_numpy())
    metrics = {}
    if test is not None and len(test):
        from governance.registry.model import DecisionModel

        model = DecisionModel(estimator, SYNTHETIC_SCHEMA, FAVOURABLE, threshold)
        p = model.score(test)
        y = (test[recipe.label].to_numpy() == FAVOURABLE).astype(int)
        metrics = {
            "test_rows": len(test),
            "auc": round(float(roc_auc_score(y, p)), 4),
            "accuracy": round(float(accuracy_score(y, p >= threshold)), 4),
            "approval_rate": round(float(np.mean(p >= threshold)), 4),
        }
    try:
        rel = os.path.relpath(path, registry.root)
    except ValueError:
        rel = str(path)
    return registry.register(
        name,
        version,
        estimator,
        SYNTHETIC_SCHEMA,
        recipe,
        favourable_class=FAVOURABLE,
        threshold=threshold,
        training_data=TrainingData(rel, sha256_file(path), len(train), recipe.label, "subject_id"),
        metrics=metrics,
        parent=parent,
        notes=notes,
        action_set_path=action_set,
    )


def day_of_decisions(
    night: date,
    n: int,
    seed: int,
    start_id: int,
    returning: pd.DataFrame | None = None,
    past_borrowers: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Applicants of one day: mostly new people, 5% returning from earlier days and 1% past
    borrowers whose loans are in the training data (so a deletion request finds their rows)."""
    rng = np.random.default_rng([seed, night.toordinal()])
    fresh = generate_population(n, seed=seed + 1, start_id=start_id)
    parts, used = [], 0
    for pool, share in ((returning, 20), (past_borrowers, 100)):
        if pool is not None and len(pool):
            k = min(len(pool), n // share)
            parts.append(pool.sample(n=k, random_state=int(rng.integers(2**31))))
            used += k
    if parts:
        fresh = pd.concat([fresh.iloc[: n - used], *parts], ignore_index=True)
    seconds = np.sort(rng.integers(0, 86_400, size=len(fresh)))
    stamps = pd.Timestamp(night, tz="UTC") + pd.to_timedelta(seconds, unit="s")
    return fresh.assign(**{DECIDED_AT: stamps})


def inject_bad_rows(log: pd.DataFrame, seed: int, share: float = 0.001) -> pd.DataFrame:
    """Damage a few rows the way real logs get damaged, so validation has work to show."""
    rng = np.random.default_rng(seed)
    out = log.copy()
    n = max(4, int(len(out) * share))
    rows = rng.choice(len(out), size=n, replace=False)
    kinds = np.arange(n) % 4
    for r, kind in zip(rows, kinds, strict=True):
        if kind == 0:
            out.loc[r, "annual_income"] = np.nan  # missing value
        elif kind == 1:
            out.loc[r, "revolving_utilization"] = 7.5  # outside the schema's range
        elif kind == 2:
            out.loc[r, "home_ownership"] = "CASTLE"  # unknown category
        else:
            out.loc[r, ID] = out.loc[(r + 1) % len(out), ID]  # duplicated decision id
    return out


def record_first_deployment(db_url: str, name: str, version: str) -> None:
    """Record ``version`` as deployed in the ledger at ``db_url`` unless it names a deployed
    version of ``name`` already (the demo's model has no earlier promises to re-check)."""
    from governance.store import deployments, init_store, session_factory

    engine = init_store(db_url)
    try:
        with session_factory(engine).begin() as session:
            if deployments.deployed_version(session, name) is None:
                deployments.record_deployment(
                    session, name, version, actor=config.actor(), via="govern demo"
                )
    finally:
        engine.dispose()


def prepare_demo(
    home: str | Path | None = None,
    *,
    days: int = 3,
    rows_per_night: int = 20_000,
    seed: int = 0,
    nights: list[date] | None = None,
    progress: Progress | None = None,
    train_rows: int = 30_000,
    test_rows: int = 10_000,
    db: str | None = None,
) -> DemoSetup:
    """Generate the population, train and deploy model v1, register its successor v2, and
    write the nights' decision logs. ``train_rows`` sizes each training set (tests use less).

    v1's deployment is recorded in the ledger at ``db`` (default: the data folder's), as its
    model's first deployment, unless that ledger already names a deployed version."""
    say = progress or (lambda _msg: None)
    home = config.home(home)
    registry = ModelRegistry(config.registry_dir(home))
    nights = nights or default_nights(days)
    version = "v1"
    if version not in registry.versions(MODEL_NAME):
        say(f"generating {train_rows + test_rows:,} applicants and training model v1")
        pop = generate_population(train_rows + test_rows, seed=seed)
        train, test = pop.iloc[:train_rows], pop.iloc[train_rows:]
        action_set = ACTION_SETS / "synthetic_lending.json"
        train_model(
            registry,
            MODEL_NAME,
            version,
            train,
            DEMO_RECIPE,
            data_dir=home / "training-data",
            test=test,
            action_set=action_set if action_set.exists() else None,
            notes="demo model trained on the synthetic lending population",
        )
    if "v2" not in registry.versions(MODEL_NAME):
        # The retrained successor: same recipe on v1's rows plus newer applicants, after the
        # population's repayment behaviour drifted (debt weighs more). Registered, not
        # deployed: deploying it runs the redeploy check.
        say("training the successor model v2 on newer, drifted data (not deployed)")
        newer = generate_population(
            train_rows + test_rows,
            seed=seed + 1000,
            start_id=1_000_000,
            label_shift=V2_LABEL_SHIFT,
        )
        action_set = ACTION_SETS / "synthetic_lending.json"
        earlier = registry.training_frame(MODEL_NAME, version)
        train_model(
            registry,
            MODEL_NAME,
            "v2",
            pd.concat([earlier, newer.iloc[:train_rows]], ignore_index=True),
            DEMO_RECIPE,
            data_dir=home / "training-data",
            test=newer.iloc[train_rows:],
            action_set=action_set if action_set.exists() else None,
            parent=version,
            notes="retrained on newer applicants after a drift in repayment behaviour",
        )
    record_first_deployment(config.db_url(db, home), MODEL_NAME, version)
    for v in (version, "v2"):
        if not (registry.path(MODEL_NAME, v) / CODEBOOK).exists():
            save_codebook(registry, MODEL_NAME, v, SYNTHETIC_CODEBOOK)
    model = registry.load(MODEL_NAME, version)
    log = ParquetDecisionLog(config.decision_log_dir(home))
    previous: pd.DataFrame | None = None
    past_borrowers = registry.training_frame(MODEL_NAME, version).drop(
        columns=[LABEL, "p_repay"], errors="ignore"
    )
    for i, night in enumerate(nights):
        say(f"writing the decision log of {night}")
        people = day_of_decisions(
            night, rows_per_night, seed, 10_000_000 + i * rows_per_night, previous, past_borrowers
        )
        scores = model.score(people)
        decisions = make_decisions(
            people,
            scores,
            model.threshold,
            model_name=MODEL_NAME,
            model_version=version,
            decided_at=people[DECIDED_AT],
            features=SYNTHETIC_SCHEMA.names,
            id_prefix=f"D{night:%Y%m%d}-",
            start_id=0,
        )
        decisions = inject_bad_rows(decisions, seed + night.toordinal())
        log.write_night(night, decisions)
        previous = people.drop(columns=[DECIDED_AT])
    return DemoSetup(home, MODEL_NAME, version, nights, rows_per_night)


# Reason statements for the demo model, worded after Regulation B's Appendix C sample reasons.
# Age is left unmapped on purpose: it is a protected attribute, and the reason linter refuses
# any notice citing it (those denials show up in `govern notices --overdue`, blocked).
DEMO_REVIEWER = "demo data (illustrative; not reviewed by a lender)"
DEMO_STATEMENTS = {
    ("annual_income", "any"): "Income insufficient for amount of credit requested",
    ("employment_years", "any"): "Length of employment",
    ("credit_history_years", "any"): "Limited length of credit history",
    ("debt_to_income", "any"): "Excessive obligations in relation to income",
    ("revolving_utilization", "any"): "Proportion of revolving balances to credit limits too high",
    ("open_accounts", "any"): "Number of open credit accounts",
    ("total_accounts", "any"): "Number of credit accounts opened",
    ("months_since_last_delinquency", "any"): "Time since most recent delinquency too short",
    ("delinquencies_2y", "any"): "Delinquent past or present credit obligations with others",
    ("public_records", "any"): "Derogatory public record or collection action",
    ("recent_inquiries", "any"): "Number of recent inquiries for credit",
    ("loan_amount", "any"): "Amount of credit requested too high for income and obligations",
    ("loan_term_months", "any"): "Term of the loan requested",
    ("savings", "any"): "Insufficient savings and investments",
    ("checking_balance", "any"): "Insufficient balance in checking account",
    ("mortgage_accounts", "any"): "Number of mortgage accounts",
    ("home_ownership", "any"): "Residential status",
    ("loan_purpose", "any"): "Purpose of the loan requested",
    ("has_cosigner", "any"): "No co-signer or guarantor on the application",
}
DEMO_NOTICE_SETTINGS = """\
# Notice settings of the demo lender (fictitious). A real lender puts its own here.
creditor:
  name: Demo Lending Company
  address: ["100 Example Avenue", "Springfield, ST 00000"]
  phone: 1-800-000-0000
agency:
  name: Consumer Financial Protection Bureau
  address: ["1700 G Street NW", "Washington, DC 20552"]
due_days: 30
controller:
  name: Demo Lending Company
  address: ["100 Example Avenue", "Springfield, ST 00000"]
  dpo: privacy@demo-lender.example
  supervisory_authority: the data protection authority of your country of residence
"""


def write_notice_settings(home: str | Path | None = None) -> Path:
    """Write the demo's notice settings (``notice.yaml`` in the data folder) unless present."""
    path = config.home(home) / "notice.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(DEMO_NOTICE_SETTINGS)
    return path


TOUR_FILE = "tour.env"


def write_tour(home: str | Path | None, nights: list[date], denied: str, borrower: str) -> Path:
    """Write the demo's own nights and example applicants as shell variables, so the README's
    tour runs as written after ``source governance-data/tour.env``.

    ``denied``: an applicant denied and issued recourse; ``borrower``: a past borrower whose
    loan is in the training data, so erasing them retrains the model.
    """
    path = config.home(home) / TOUR_FILE
    lines = [
        "# Written by `govern demo`: its nights and applicants, for the README's tour.",
        f"FIRST_NIGHT={min(nights).isoformat()}",
        f"LAST_NIGHT={max(nights).isoformat()}",
        f"DENIED={_shell_word(denied)}  # denied, and issued recourse",
        f"BORROWER={_shell_word(borrower)}  # a past borrower: erasing them retrains the model",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _shell_word(text: str) -> str:
    """``text`` quoted for sh (demo ids are plain, but a file meant to be sourced must be safe)."""
    import shlex

    return shlex.quote(text)
