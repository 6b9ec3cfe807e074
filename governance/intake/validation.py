"""Validation of a night's decision log with Great Expectations, plus the checks GX cannot express.

Every row either passes every check or goes to quarantine with each check it failed and the
offending value; nothing is dropped silently. A log that cannot be checked row by row at all (a
missing column, timestamps without a time zone) is refused as a whole with one clear error.

Numeric features have two ranges. A value outside the hard bounds the user declared
(``FeatureSpec.min``/``max``) is impossible and quarantined. A value outside the range observed in
the training data or reference sample (``observed_min``/``observed_max``) but inside the hard
bounds is legitimate: the row is processed and flagged as out of distribution (column
``_out_of_range`` of the valid rows, counted in ``ValidationResult.flags``).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from governance.exceptions import DecisionLogError
from governance.intake.decision_log import (
    APPROVED,
    DECIDED_AT,
    DECISION,
    DENIED,
    ID,
    META_COLUMNS,
    MODEL_NAME,
    MODEL_VERSION,
    SCORE,
    SUBJECT,
    ZONE_PATTERN,
    night_bounds,
    score_reproduced,
)
from governance.registry.schema import FeatureSchema
from governance.store.models import ID_LEN, NAME_LEN

ROW = "_row"  # position of a row in the night's log, the key quarantine records point to
OUT_OF_RANGE = "_out_of_range"  # per valid row: features beyond their observed range, or None

QUARANTINE_COLUMNS = [
    "row_number",
    ID,
    SUBJECT,
    MODEL_NAME,
    MODEL_VERSION,
    "check",
    "column",
    "value",
    "row_json",
]

# Checks made outside GX, named like expectations so reviewers read one vocabulary.
CHECK_VERSION = "model_version_is_registered"
CHECK_TYPE = "expect_column_values_to_be_of_type"
CHECK_IN_NIGHT = "decided_at_within_night"
CHECK_DECISION_RULE = "decision_matches_score_and_threshold"
CHECK_INTEGRAL = "expect_column_values_to_be_integers"
CHECK_SEEN = "decision_id_not_recorded_on_another_night"
CHECK_REPRODUCED = "score_reproduced_by_registered_model"
CHECK_TIME_ZONE = "decided_at_has_time_zone"
# A flag, not a failure: the row is processed.
FLAG_OBSERVED = "value_within_observed_range"
# Identifiers are stored in columns of fixed width; longer ones could not be recorded at all.
ID_COLUMNS = (ID, SUBJECT)
TEXT_WIDTH = {ID: ID_LEN, SUBJECT: ID_LEN, MODEL_NAME: NAME_LEN, MODEL_VERSION: NAME_LEN}


@dataclass(frozen=True)
class ModelContract:
    """What a model version expects of its log rows."""

    schema: FeatureSchema
    threshold: float


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of validating one night.

    Attributes
    ----------
    valid : DataFrame
        Rows that passed every check, features coerced to their schema types, with ``_row``.
    quarantine : DataFrame
        One record per (row, failed check), columns ``QUARANTINE_COLUMNS``.
    checks : list of dict
        Per check: name, column, number of failing rows; the night's validation report.
    flags : list of dict
        Per feature with valid rows beyond its observed range: ``check``
        (``value_within_observed_range``), ``column`` and ``flagged_rows``.
    """

    valid: pd.DataFrame
    quarantine: pd.DataFrame
    checks: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_rows(self) -> int:
        return len(self.valid) + self.n_quarantined_rows

    @property
    def n_quarantined_rows(self) -> int:
        return int(self.quarantine["row_number"].nunique()) if len(self.quarantine) else 0


@cache
def _gx() -> tuple[Any, Any, Any]:
    """One ephemeral GX context per process; building it costs a few hundred ms."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    for name in ("great_expectations", "great_expectations.data_context.types.base"):
        logging.getLogger(name).setLevel(logging.WARNING)  # "created temporary directory" notes
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch_def = (
        context.data_sources.add_pandas(name="decision_log")
        .add_dataframe_asset(name="night")
        .add_batch_definition_whole_dataframe(name="whole")
    )
    return gx, gxe, (context, batch_def)


_suite_counter = 0


def build_suite(contract: ModelContract) -> Any:
    """The GX expectation suite derived from a model version's feature schema.

    Required columns exist; identifiers, timestamps, scores and features are not null; numeric
    features lie within their declared range; categories belong to their declared set;
    decision ids are unique; decision and subject ids are 1 to 64 characters long (the width
    the ledger stores) without NUL characters; scores lie in [0, 1]; decisions are 'approved'
    or 'denied'.
    """
    global _suite_counter
    gx, gxe, (context, _) = _gx()
    _suite_counter += 1
    suite = gx.ExpectationSuite(name=f"decision_log_{_suite_counter}")
    for column in (ID, SUBJECT, DECIDED_AT, MODEL_NAME, MODEL_VERSION, SCORE, DECISION):
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=column))
    suite.add_expectation(gxe.ExpectColumnValuesToBeUnique(column=ID))
    for column in ID_COLUMNS:
        suite.add_expectation(
            gxe.ExpectColumnValueLengthsToBeBetween(
                column=column, min_value=1, max_value=TEXT_WIDTH[column]
            )
        )
        # PostgreSQL text cannot hold NUL: one such id would fail the whole chunk's write.
        suite.add_expectation(gxe.ExpectColumnValuesToNotMatchRegex(column=column, regex="\x00"))
    suite.add_expectation(gxe.ExpectColumnValuesToBeBetween(column=SCORE, min_value=0, max_value=1))
    suite.add_expectation(
        gxe.ExpectColumnValuesToBeInSet(column=DECISION, value_set=[APPROVED, DENIED])
    )
    for spec in contract.schema:
        suite.add_expectation(gxe.ExpectColumnValuesToNotBeNull(column=spec.name))
        if spec.dtype == "category":
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=spec.name, value_set=list(spec.categories))
            )
        elif spec.dtype == "bool":
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeInSet(column=spec.name, value_set=[0, 1])
            )
        else:
            lo = -math.inf if spec.min is None else spec.min
            hi = math.inf if spec.max is None else spec.max
            # Infinite values are out of range even without declared bounds.
            suite.add_expectation(
                gxe.ExpectColumnValuesToBeBetween(
                    column=spec.name,
                    min_value=lo if math.isfinite(lo) else -1.7976931348623157e308,
                    max_value=hi if math.isfinite(hi) else 1.7976931348623157e308,
                )
            )
    return context.suites.add(suite)


def _required(contracts: Mapping[tuple[str, str], ModelContract]) -> set[str]:
    names = set(META_COLUMNS)
    for c in contracts.values():
        names.update(c.schema.names)
    return names


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _json_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v if isinstance(v, int | float | str | bool) else str(v)


class _Failures:
    """Collects (row, check, column, value) records."""

    def __init__(self) -> None:
        self.records: list[tuple[int, str, str | None, Any]] = []
        self.counts: dict[tuple[str, str | None], int] = {}

    def add(self, rows: np.ndarray, check: str, column: str | None, values: Any) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        self.counts[(check, column)] = self.counts.get((check, column), 0) + len(rows)
        vals = list(values) if values is not None else [None] * len(rows)
        self.records.extend(
            (int(r), check, column, _json_value(v)) for r, v in zip(rows, vals, strict=True)
        )


def check_night_structure(
    frame: pd.DataFrame,
    night: date,
    contracts: Mapping[tuple[str, str], ModelContract],
) -> dict[tuple[str, str], ModelContract]:
    """The checks of a whole night that need no row-by-row work: each column once, every
    required column present, timestamps with a time zone, and scores on the probability scale
    (when most scores lie outside [0, 1], the log is in another unit, such as percent, and
    quarantining most rows would only hide that; a few such scores are quarantined).

    Cheap enough to run before a Prefect server or a Dask cluster starts, so a log that cannot
    be validated at all is refused in seconds. Returns the contracts of the versions the log
    references (all of them when it references none that is registered).

    Raises
    ------
    DecisionLogError
        If a column is repeated or missing, ``decided_at`` carries no time zone, or more than
        half of the scores lie outside [0, 1].
    """
    repeated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]})
    if repeated:
        raise DecisionLogError(
            f"decision log for {night} has column(s) {', '.join(repeated)} more than once; "
            "expected each column once"
        )
    present = set(frame.columns)
    versions_seen = (
        {
            (str(n), str(v))
            for n, v in frame[[MODEL_NAME, MODEL_VERSION]].drop_duplicates().itertuples(index=False)
        }
        if {MODEL_NAME, MODEL_VERSION} <= present
        else set()
    )
    used = {k: c for k, c in contracts.items() if k in versions_seen} or dict(contracts)
    missing = sorted(_required(used) - present)
    if missing:
        raise DecisionLogError(
            f"decision log for {night} lacks required column(s): {', '.join(missing)}"
        )
    # Timestamps: a column without a time zone cannot be placed in a night at all.
    stamps = frame[DECIDED_AT]
    if pd.api.types.is_datetime64_any_dtype(stamps) and getattr(stamps.dt, "tz", None) is None:
        raise DecisionLogError(
            f"decision log for {night}: '{DECIDED_AT}' has no time zone; expected UTC timestamps"
        )
    if not pd.api.types.is_datetime64_any_dtype(stamps) and len(stamps):
        naive = _naive_text(stamps)
        if naive.any() and naive.sum() == stamps.notna().sum():
            raise DecisionLogError(
                f"decision log for {night}: '{DECIDED_AT}' values carry no time zone (e.g. "
                f"{stamps[naive].iloc[0]!r}); expected ISO 8601 with an offset or 'Z'"
            )
    scores = pd.to_numeric(frame[SCORE], errors="coerce").dropna()
    off = ~scores.between(0, 1)
    if len(scores) and off.mean() > 0.5:
        raise DecisionLogError(
            f"decision log for {night}: {off.mean():.0%} of '{SCORE}' values lie outside "
            f"[0, 1] (e.g. {scores[off].iloc[0]:g}); expected probabilities of the favourable "
            "outcome, not percentages or raw scores"
        )
    return used


def contracts_for(frame: pd.DataFrame, registry: Any) -> dict[tuple[str, str], Any]:
    """The manifests of the registered versions a night's log references, by (name, version).

    ``registry`` is a :class:`~governance.registry.model_registry.ModelRegistry`. Versions that
    are not registered (or whose names could not be) are left out: their rows go to quarantine.
    """
    from governance.exceptions import UnknownModelVersion

    manifests = {}
    if len(frame) and {MODEL_NAME, MODEL_VERSION} <= set(frame.columns):
        pairs = frame[[MODEL_NAME, MODEL_VERSION]].dropna().astype(str).drop_duplicates()
        for name, version in pairs.itertuples(index=False):
            try:
                manifests[(name, version)] = registry.manifest(name, version)
            except (UnknownModelVersion, ValueError):
                continue
    return manifests


def validate_night(
    frame: pd.DataFrame,
    night: date,
    contracts: Mapping[tuple[str, str], ModelContract],
    *,
    seen_elsewhere: Callable[[list[str]], set[str]] | None = None,
    reproduce: Mapping[tuple[str, str], Callable[[pd.DataFrame], np.ndarray]] | None = None,
) -> ValidationResult:
    """Validate one night's decision log.

    Parameters
    ----------
    frame : DataFrame
        The night as read from the source, in log order.
    night : date
        The UTC decision date the log claims to cover.
    contracts : mapping of (model name, version) to ModelContract
        Registered versions the log may reference; rows naming any other go to quarantine.
    seen_elsewhere : callable, optional
        Given decision ids, returns those already recorded for another night (from the store);
        such rows go to quarantine rather than overwrite history.
    reproduce : mapping of (model name, version) to callable, optional
        The registered model's score of rows (schema columns): rows that pass every other
        check but whose logged score it does not reproduce go to quarantine
        (``score_reproduced_by_registered_model``).

    Returns
    -------
    ValidationResult

    Raises
    ------
    DecisionLogError
        If a required column is missing or repeated, or ``decided_at`` carries no time zone.
    """
    if len(frame) == 0:
        return ValidationResult(frame.assign(**{ROW: [], OUT_OF_RANGE: []}), _empty_quarantine())
    used = check_night_structure(frame, night, contracts)
    df = frame.reset_index(drop=True).copy()
    df[ROW] = np.arange(len(df), dtype=np.int64)
    # Identifiers are checked in the form the ledger stores them, text: 7 and "7" are one id.
    for col in (ID, SUBJECT, MODEL_NAME, MODEL_VERSION):
        df[col] = df[col].astype(object).map(lambda v: None if _missing(v) else str(v))
    fails = _Failures()

    stamps = df[DECIDED_AT]
    if pd.api.types.is_datetime64_any_dtype(stamps) and getattr(stamps.dt, "tz", None) is None:
        raise DecisionLogError(
            f"decision log for {night}: '{DECIDED_AT}' has no time zone; expected UTC timestamps"
        )
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        naive = _naive_text(stamps)
        if naive.any() and naive.sum() == stamps.notna().sum():
            raise DecisionLogError(
                f"decision log for {night}: '{DECIDED_AT}' values carry no time zone (e.g. "
                f"{stamps[naive].iloc[0]!r}); expected ISO 8601 with an offset or 'Z'"
            )
        if naive.any():
            fails.add(df.loc[naive, ROW], CHECK_TIME_ZONE, DECIDED_AT, stamps[naive])
    parsed = pd.to_datetime(stamps, utc=True, errors="coerce", format="mixed")
    start, end = night_bounds(night)
    bad_time = (parsed < start) | (parsed >= end) | (parsed.isna() & stamps.notna())
    if bad_time.any():
        fails.add(df.loc[bad_time, ROW], CHECK_IN_NIGHT, DECIDED_AT, stamps[bad_time])
    df[DECIDED_AT] = parsed

    # Types GX would only see as nulls: non-numeric text in numeric columns.
    numeric_cols = {s.name for c in used.values() for s in c.schema if s.is_numeric} | {SCORE}
    for col in sorted(numeric_cols):
        raw = df[col]
        coerced = pd.to_numeric(raw, errors="coerce")
        wrong = coerced.isna() & raw.notna()
        if wrong.any():
            fails.add(df.loc[wrong, ROW], CHECK_TYPE, col, raw[wrong])
        df[col] = coerced.astype(float)
        ints = {s.name for c in used.values() for s in c.schema if s.dtype in ("int", "bool")}
        if col in ints:
            frac = np.isfinite(df[col]) & (df[col] != np.round(df[col]))
            if frac.any():
                fails.add(df.loc[frac, ROW], CHECK_INTEGRAL, col, df.loc[frac, col])
    for col in {s.name for c in used.values() for s in c.schema if not s.is_numeric}:
        df[col] = df[col].astype(object).where(df[col].notna(), None)
        df[col] = df[col].map(lambda v: v if v is None else str(v))

    # Model versions must be registered before any schema can apply.
    key = list(zip(df[MODEL_NAME].astype(str), df[MODEL_VERSION].astype(str), strict=True))
    known = np.array([k in contracts for k in key], dtype=bool)
    if (~known).any():
        fails.add(
            df.loc[~known, ROW],
            CHECK_VERSION,
            MODEL_VERSION,
            [f"{n}/{v}" for (n, v), ok in zip(key, known, strict=True) if not ok],
        )

    # GX suite per model version, over that version's rows.
    _, _, (_, batch_def) = _gx()
    checks = []
    groups = pd.Series(key, index=df.index)
    for version_key, contract in used.items():
        part = df.loc[groups == version_key] if len(used) > 1 or not known.all() else df
        if part.empty:
            continue
        suite = build_suite(contract)
        result = batch_def.get_batch(batch_parameters={"dataframe": part}).validate(
            suite,
            result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW]},
        )
        for r in result.results:
            cfg = r.expectation_config
            column = cfg.kwargs.get("column")
            if r.success:
                continue
            if r.exception_info and r.exception_info.get("raised_exception"):
                raise DecisionLogError(
                    f"validation of {column!r} failed to run: "
                    f"{r.exception_info['exception_message']}"
                )
            idx = r.result.get("unexpected_index_list") or []
            rows = [int(item[ROW]) for item in idx]
            vals = [item.get(column) for item in idx]
            fails.add(np.array(rows), cfg.type, column, vals)
        # Decision rule: the logged decision must follow from the logged score.
        ok = part[SCORE].notna() & part[DECISION].isin([APPROVED, DENIED])
        expected = np.where(part[SCORE] >= contract.threshold, APPROVED, DENIED)
        wrong = ok & (part[DECISION].to_numpy() != expected)
        if wrong.any():
            fails.add(
                part.loc[wrong, ROW],
                CHECK_DECISION_RULE,
                DECISION,
                [
                    f"{d} at score {s:.4f}, threshold {contract.threshold}"
                    for d, s in zip(part.loc[wrong, DECISION], part.loc[wrong, SCORE], strict=True)
                ],
            )

    if seen_elsewhere is not None:
        ids = df[ID].dropna().astype(str)
        clash = seen_elsewhere(ids.unique().tolist())
        if clash:
            hit = df[ID].astype(str).isin(clash) & df[ID].notna()
            fails.add(df.loc[hit, ROW], CHECK_SEEN, ID, df.loc[hit, ID])

    if reproduce:
        passed = ~df[ROW].isin({r for r, *_ in fails.records})
        for version_key, score in reproduce.items():
            mine = np.array([k == version_key for k in key], dtype=bool)
            part = df.loc[passed.to_numpy() & mine]
            if part.empty:
                continue
            recomputed = np.asarray(score(part), dtype=float)
            off = ~score_reproduced(part[SCORE].to_numpy(dtype=float), recomputed)
            if off.any():
                fails.add(
                    part.loc[off, ROW],
                    CHECK_REPRODUCED,
                    SCORE,
                    [
                        f"logged {a:.6f}, registered model {b:.6f}"
                        for a, b in zip(part.loc[off, SCORE], recomputed[off], strict=True)
                    ],
                )

    for (check, column), n in sorted(fails.counts.items(), key=lambda kv: str(kv[0])):
        checks.append({"check": check, "column": column, "failed_rows": n})
    bad_rows = {r for r, *_ in fails.records}
    valid = df.loc[~df[ROW].isin(bad_rows)].reset_index(drop=True)
    flags = _flag_out_of_range(valid, used)
    quarantine = _quarantine_frame(frame.reset_index(drop=True), fails)
    return ValidationResult(valid, quarantine, checks, flags)


def _naive_text(stamps: pd.Series) -> np.ndarray:
    """Timestamps given as text or datetime objects that name no time zone."""
    out = np.zeros(len(stamps), dtype=bool)
    is_dt = stamps.map(lambda v: isinstance(v, datetime)).to_numpy(dtype=bool)
    if is_dt.any():
        out[is_dt] = stamps[is_dt].map(lambda v: v.tzinfo is None).to_numpy(dtype=bool)
    text = stamps.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    if text.any():
        zoned = stamps[text].str.strip().str.contains(ZONE_PATTERN, regex=True)
        out[text] = ~zoned.to_numpy(dtype=bool)
    return out


def _flag_out_of_range(
    valid: pd.DataFrame, contracts: Mapping[tuple[str, str], ModelContract]
) -> list[dict[str, Any]]:
    """Mark valid rows whose numeric features lie beyond their observed range (in place:
    column ``_out_of_range``, the feature names or None) and count them per feature."""
    hits: dict[int, list[str]] = {}
    counts: dict[str, int] = {}
    keys = list(zip(valid[MODEL_NAME].astype(str), valid[MODEL_VERSION].astype(str), strict=True))
    for version_key, contract in contracts.items():
        rows = valid.index[np.array([k == version_key for k in keys], dtype=bool)]
        if not len(rows):
            continue
        for spec in contract.schema:
            if spec.dtype not in ("int", "float"):
                continue
            lo, hi = spec.observed_min, spec.observed_max
            if lo is None and hi is None:
                continue
            v = valid.loc[rows, spec.name].to_numpy(dtype=float)
            out = np.zeros(len(v), dtype=bool)
            if lo is not None:
                out |= v < lo
            if hi is not None:
                out |= v > hi
            if out.any():
                counts[spec.name] = counts.get(spec.name, 0) + int(out.sum())
                for r in rows[out]:
                    hits.setdefault(int(r), []).append(spec.name)
    valid[OUT_OF_RANGE] = [hits.get(i) for i in range(len(valid))]
    return [
        {"check": FLAG_OBSERVED, "column": c, "flagged_rows": n} for c, n in sorted(counts.items())
    ]


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in QUARANTINE_COLUMNS})


def _quarantine_frame(raw: pd.DataFrame, fails: _Failures) -> pd.DataFrame:
    if not fails.records:
        return _empty_quarantine()
    rec = pd.DataFrame(fails.records, columns=["row_number", "check", "column", "value"])
    rec = rec.drop_duplicates(["row_number", "check", "column"]).sort_values(
        ["row_number", "check", "column"], na_position="first"
    )
    rows = raw.iloc[rec["row_number"].to_numpy()]

    def ident(col: str) -> list[Any]:
        # Cut to the ledger's column width (marked with '…') and NUL made visible (a text
        # column cannot hold it); row_json keeps the whole value, escaped.
        if col not in rows.columns:
            return [None] * len(rows)
        width = TEXT_WIDTH[col]
        text = [None if _missing(v) else str(v).replace("\x00", "\ufffd") for v in rows[col]]
        return [t if t is None or len(t) <= width else t[: width - 1] + "…" for t in text]

    row_json = [
        json.dumps({k: _json_value(v) for k, v in r.items()}, sort_keys=True, default=str)
        for r in rows.to_dict("records")
    ]
    return pd.DataFrame(
        {
            "row_number": rec["row_number"].to_numpy(),
            ID: ident(ID),
            SUBJECT: ident(SUBJECT),
            MODEL_NAME: ident(MODEL_NAME),
            MODEL_VERSION: ident(MODEL_VERSION),
            "check": rec["check"].to_numpy(),
            "column": rec["column"].to_numpy(),
            "value": [None if v is None else json.dumps(v, default=str) for v in rec["value"]],
            "row_json": row_json,
        }
    )
