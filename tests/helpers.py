"""Small pieces several test modules share: model stubs, a validation contract, ledger reads."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa

from governance.intake.validation import ModelContract
from governance.registry.schema import FeatureSchema, FeatureSpec


class LogisticStub:
    """sklearn-free classifier with P(class 1) = sigmoid(X @ w + b) on the frame's columns."""

    classes_ = np.array([0, 1])

    def __init__(self, w, b):
        self.w, self.b = np.asarray(w, float), float(b)

    def predict_proba(self, frame):
        z = frame.to_numpy(dtype=float) @ self.w + self.b
        p = 1.0 / (1.0 + np.exp(-z))
        return np.column_stack([1 - p, p])


class RuleStub:
    """sklearn-free classifier: P(class 1) = rule(X) as 0/1."""

    classes_ = np.array([0, 1])

    def __init__(self, rule):
        self.rule = rule

    def predict_proba(self, frame):
        p = np.asarray(self.rule(frame.to_numpy(dtype=float)), dtype=float)
        return np.column_stack([1 - p, p])


# A decision-log contract for validation tests: one feature of every type.
NIGHT = date(2026, 11, 24)
SCHEMA = FeatureSchema(
    (
        FeatureSpec("income", "float", 0, 1e6),
        FeatureSpec("accounts", "int", 0, 50),
        FeatureSpec("home", "category", categories=("RENT", "OWN")),
        FeatureSpec("cosigner", "bool", 0, 1),
    )
)
CONTRACTS = {("credit", "v1"): ModelContract(SCHEMA, threshold=0.5)}


def read_sql(url: str, sql: str, **params: object) -> pd.DataFrame:
    """The result of one query (with bound ``params``) against the ledger at ``url``."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        frame = pd.read_sql(sa.text(sql), conn, params=params or None)
    engine.dispose()
    return frame


def serve_script(module: str, flow: str, name: str) -> str:
    """Python source that serves ``module:flow`` as deployment ``name`` with its trigger exactly
    as deploy/prefect.yaml declares it (only the checks' size is cut), for ``python -c``."""
    return f"""
import yaml
from prefect.events import DeploymentEventTrigger

from {module} import {flow}

raw = yaml.safe_load(open("deploy/prefect.yaml"))
spec = next(d for d in raw["deployments"] if d["name"] == {name!r})["triggers"][0]
trigger = DeploymentEventTrigger(
    expect=set(spec["expect"]), match=spec["match"], parameters=spec["parameters"]
)
{flow}.serve(
    name={name!r},
    triggers=[trigger],
    parameters={{"variants": 0, "recent_days": 0, "window_months": 1000}},
    print_starting_message=False,
)
"""


def finished_runs(client, deployment_id, n: int, deadline: float) -> list:  # noqa: ANN001
    """The deployment's first ``n`` flow runs in a final state, oldest first; fails at
    ``deadline`` (a time.time() value) if fewer have finished."""
    import time

    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    while time.time() < deadline:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
        )
        done = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(done) >= n:
            return sorted(done, key=lambda r: r.created)
        time.sleep(1)
    raise AssertionError(f"the served deployment did not finish {n} run(s) in time")
