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
