"""Import a classifier fitted elsewhere: load it safely, derive its schema, check that it scores
the reference sample, and register it with a clone recipe and a report of what was checked.

:func:`import_fitted` is the one entry point; the ``govern models import`` command and any other
source of fitted models (a model registry client that downloads an artifact first) call it and
may add their own fields to the manifest's ``source``.
"""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from governance.exceptions import ImportRefused, ManifestError
from governance.hashing import sha256_file
from governance.registry.exact_paths import exact_paths
from governance.registry.forests import lightgbm_categorical
from governance.registry.model import DecisionModel
from governance.registry.model_registry import Manifest, ModelRegistry, is_trusted_type
from governance.registry.schema import FeatureSchema, FeatureSpec
from governance.registry.training import CLONE, TrainingRecipe

SKOPS, PICKLE = "skops", "pickle"
_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
REVIEW_RANGE = "range proposed from the reference sample; review it"
REVIEW_CATEGORIES = "categories taken from the reference sample; review them"
# Checks that refit the model on its training rows; unavailable without them.
NEEDS_TRAINING = (
    "deletion retrain (govern forget): refits the model without the erased subject",
    "deletion fragility (govern fragility): refits on training rows minus candidate deletions",
    "forward validity over retrained variants (redeploy check with variants)",
)


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_fitted` registered and checked.

    Attributes
    ----------
    manifest : Manifest
        The new version's manifest (not deployed).
    scored_rows : int
        Rows of the reference sample the model scored.
    approved_share : float
        Share of those rows the decision rule approves.
    exact_paths : dict
        Which exact paths apply (see :func:`governance.registry.exact_paths.exact_paths`).
    recipe_check : dict
        Whether the clone recipe refitted on the training data reproduces the model's scores.
    schema_review : list of str
        Features whose inferred range or categories await the user's review.
    unavailable : list of str
        Checks that need training data the import was not given.
    notes : list of str
        Everything else worth a reviewer's attention.
    """

    manifest: Manifest
    scored_rows: int
    approved_share: float
    exact_paths: dict[str, Any]
    recipe_check: dict[str, Any]
    schema_review: list[str] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "name": m.name,
            "version": m.version,
            "artifact_sha256": m.artifact_sha256,
            "source": dict(m.source or {}),
            "features": len(m.schema),
            "category_input": m.category_input,
            "scored_rows": self.scored_rows,
            "approved_share": self.approved_share,
            "exact_paths": self.exact_paths,
            "recipe_check": self.recipe_check,
            "schema_review": self.schema_review,
            "unavailable": self.unavailable,
            "notes": self.notes,
        }


class _Held:
    """A clone recipe's template that is already in memory (the import's own estimator)."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def load(self) -> Any:
        return self.estimator


def read_table(path: str | Path, what: str = "data") -> pd.DataFrame:
    """Read a CSV or Parquet file (by its name) into a frame.

    Raises
    ------
    ImportRefused
        If the file is missing, of another kind, or unreadable.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{what} file {path} not found")
    name = path.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pd.read_parquet(path)
        if name.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - pandas and Arrow raise many kinds here
        raise ImportRefused(f"{what} file {path} is unreadable: {exc}") from exc
    raise ImportRefused(f"{what} file {path} must be .csv or .parquet")


def read_artifact(
    path: str | Path, *, trust_pickle: bool = False, trusted_types: Sequence[str] = ()
) -> tuple[Any, dict[str, Any]]:
    """Load a fitted estimator from a skops file, or a pickle/joblib file the user trusts.

    A skops file is checked with ``skops.io.get_untrusted_types`` before anything is built; a
    type outside the allow-list (scikit-learn, NumPy, SciPy sparse, XGBoost, LightGBM) is
    refused unless named in ``trusted_types``. Pickle and joblib files can run code while
    loading, so they are read only with ``trust_pickle``.

    Returns
    -------
    estimator : object
    source : dict
        ``format``, ``file``, ``sha256``, ``trust_pickle`` and ``trusted_types`` used.

    Raises
    ------
    ImportRefused
        If the file is missing, untrusted, or cannot be loaded.
    """
    import skops.io as sio

    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"artifact {path} not found")
    is_pickle = path.name.lower().endswith(_PICKLE_SUFFIXES) or not zipfile.is_zipfile(path)
    source: dict[str, Any] = {
        "format": PICKLE if is_pickle else SKOPS,
        "file": path.name,
        "sha256": sha256_file(path),
        "trust_pickle": bool(trust_pickle),
    }
    if is_pickle:
        if not trust_pickle:
            raise ImportRefused(
                f"{path} is a pickle/joblib file, which can run any code while it loads; save "
                "the model with skops.io.dump, or pass --trust-pickle if you trust its origin"
            )
        import joblib

        try:
            return joblib.load(path), source
        except Exception as exc:  # noqa: BLE001 - unpickling raises anything
            raise ImportRefused(f"{path} could not be unpickled: {exc}") from exc
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - skops raises assorted errors on corrupt zips
        raise ImportRefused(f"{path} is not a readable skops file: {exc}") from exc
    refused = sorted(t for t in untrusted if not is_trusted_type(t, trusted_types))
    if refused:
        raise ImportRefused(
            f"{path} asks to build types outside the allow-list: {', '.join(refused)}; pass "
            "--trust-type NAME for each one you trust"
        )
    extra = sorted(t for t in untrusted if t in trusted_types)
    source["trusted_types"] = extra
    try:
        return sio.load(path, trusted=untrusted), source
    except Exception as exc:  # noqa: BLE001
        raise ImportRefused(f"{path} could not be loaded by skops: {exc}") from exc


# ------------------------------------------------------------------------------------------
# schema
# ------------------------------------------------------------------------------------------
def _steps(est: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [s for _, s in est.steps] if isinstance(est, Pipeline) else [est]


def feature_names(est: Any) -> list[str]:
    """The column names the estimator was fitted on (``feature_names_in_``).

    Raises
    ------
    ImportRefused
        If the estimator records none (it was fitted on an array, not a DataFrame).
    """
    for step in [est, *_steps(est)]:
        names = getattr(step, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
    raise ImportRefused(
        "the model records no feature names (feature_names_in_): fit it on a pandas DataFrame "
        "whose columns are named as in the decision log"
    )


def encoder_categories(est: Any) -> dict[str, list[Any]]:
    """Per input column, the categories the model's own encoders learnt.

    Read from OneHotEncoder and OrdinalEncoder columns of a leading ColumnTransformer,
    histogram gradient boosting's internal encoder (``categorical_features="from_dtype"``) and
    LightGBM's pandas categories.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    out: dict[str, list[Any]] = {}
    steps = _steps(est)

    names = feature_names(est)

    def from_transformer(ct: Any) -> None:
        for _, trans, cols in getattr(ct, "transformers_", []):
            if isinstance(trans, OneHotEncoder | OrdinalEncoder):
                arr = np.atleast_1d(np.asarray(cols))
                picked = (
                    [names[i] for i in np.flatnonzero(arr)] if arr.dtype == bool
                    else [c if isinstance(c, str) else names[int(c)] for c in arr.tolist()]
                )
                for c, cats in zip(picked, trans.categories_, strict=True):
                    out[c] = [v for v in cats.tolist() if not _is_nan(v)]

    if isinstance(steps[0], ColumnTransformer):
        from_transformer(steps[0])
    final = steps[-1]
    pre = getattr(final, "_preprocessor", None)
    if pre is not None and len(steps) == 1:
        from_transformer(pre)
    booster = getattr(final, "booster_", None)
    cats = getattr(booster, "pandas_categorical", None) if booster is not None else None
    if cats and len(steps) == 1:
        cat_idx = lightgbm_categorical(final, names)
        for j, values in zip(cat_idx, cats, strict=False):
            out[names[j]] = list(values)
    return out


def reads_category_dtype(est: Any) -> bool:
    """Whether the estimator learnt its categories from pandas categorical columns (histogram
    gradient boosting with ``categorical_features="from_dtype"``, LightGBM's pandas
    categories, XGBoost with ``enable_categorical``), so it must be fitted on them again."""
    final = _steps(est)[-1]
    if len(_steps(est)) != 1:
        return False
    if getattr(final, "_preprocessor", None) is not None:
        return True
    booster = getattr(final, "booster_", None)
    if booster is not None and getattr(booster, "pandas_categorical", None):
        return True
    return bool(getattr(final, "enable_categorical", False))


def _is_nan(v: Any) -> bool:
    return isinstance(v, float) and np.isnan(v)


def infer_schema(est: Any, reference: pd.DataFrame) -> tuple[FeatureSchema, list[str]]:
    """The model's feature schema from its own encoders and the reference sample.

    Category features take the categories the model's encoders learnt (text); numeric-coded
    categories of an encoder stay numeric features. Other text or categorical columns of the
    sample become category features with the sample's values (marked for review). Numeric
    features get the sample's range as their observed range (marked for review) and no hard
    bounds: those are the user's to declare.

    Returns
    -------
    schema : FeatureSchema
    notes : list of str
    """
    names = feature_names(est)
    missing = [n for n in names if n not in reference.columns]
    if missing:
        raise ImportRefused(
            f"the reference sample lacks feature(s) the model was fitted on: {', '.join(missing)}"
        )
    learnt = encoder_categories(est)
    notes: list[str] = []
    specs: list[FeatureSpec] = []
    for name in names:
        col = reference[name]
        cats = learnt.get(name)
        if cats is not None and all(isinstance(c, str) for c in cats):
            unseen = sorted(set(col.dropna().astype(str)) - set(cats))
            if unseen:
                notes.append(
                    f"{name}: the sample holds values the model's encoder never learnt "
                    f"({', '.join(unseen[:5])}); such rows will be quarantined"
                )
            specs.append(FeatureSpec(name, "category", categories=tuple(cats)))
            continue
        frame = reference[[name]]
        if cats is not None:  # numeric codes: keep the feature numeric
            frame = reference[[name]].apply(pd.to_numeric, errors="coerce")
        spec = FeatureSchema.from_frame(frame, review=REVIEW_RANGE).features[0]
        if spec.dtype == "category":
            spec = FeatureSpec(
                name, "category", categories=spec.categories, review=REVIEW_CATEGORIES
            )
        specs.append(spec)
    return FeatureSchema(tuple(specs)), notes


def conform(frame: pd.DataFrame, schema: FeatureSchema, keep: Sequence[str] = ()) -> pd.DataFrame:
    """The schema's columns (plus ``keep``) with categories as text and numbers as floats."""
    out = frame.loc[:, [*schema.names, *[c for c in keep if c not in schema.names]]].copy()
    for spec in schema:
        if spec.dtype == "category":
            out[spec.name] = out[spec.name].astype(str)
        else:
            out[spec.name] = pd.to_numeric(out[spec.name], errors="coerce").astype(float)
    return out


def _schema_overrides(schema_file: str | Path | Sequence[Mapping[str, Any]] | None) -> list:
    if schema_file is None:
        return []
    if isinstance(schema_file, str | Path):
        import json

        try:
            items = json.loads(Path(schema_file).read_text())
        except (OSError, ValueError) as exc:
            raise ManifestError(f"schema file {schema_file} is unreadable: {exc}") from exc
        if isinstance(items, Mapping):
            items = items.get("features", [])
        return list(items)
    return list(schema_file)


# ------------------------------------------------------------------------------------------
# checks
# ------------------------------------------------------------------------------------------
def _favourable(est: Any, favourable: Any) -> Any:
    classes = list(getattr(est, "classes_", []))
    if len(classes) != 2 or not hasattr(est, "predict_proba"):
        raise ImportRefused(
            f"the model must be a binary classifier with predict_proba; classes: {classes}"
        )
    for c in classes:
        if c == favourable or str(c) == str(favourable):
            return c.item() if isinstance(c, np.generic) else c
    raise ImportRefused(
        f"favourable class {favourable!r} is not a class of the model; classes: {classes}"
    )


def _score_sample(
    est: Any, schema: FeatureSchema, fav: Any, threshold: float, reference: pd.DataFrame
) -> tuple[str, np.ndarray, list[str]]:
    """Score the sample through the schema (category input as text, else as pandas
    categoricals) and compare with the model's own predictions on the sample as given."""
    notes: list[str] = []
    direct = None
    try:
        classes = list(est.classes_)
        direct = np.asarray(est.predict_proba(reference[schema.names]))[:, classes.index(fav)]
    except Exception:  # noqa: BLE001 - the sample's own dtypes may not suit the model
        notes.append(
            "the sample as read (say, from CSV) could not be scored directly; it was scored "
            "through the schema only"
        )
    errors = []
    order = ("category", "text") if reads_category_dtype(est) else ("text", "category")
    for category_input in order:
        model = DecisionModel(est, schema, fav, threshold, category_input=category_input)
        try:
            p = model.score(reference)
        except Exception as exc:  # noqa: BLE001 - any failure means this input form is wrong
            errors.append(f"{category_input}: {type(exc).__name__}: {exc}".splitlines()[0])
            continue
        if not np.all(np.isfinite(p) & (p >= 0) & (p <= 1)):
            errors.append(f"{category_input}: scores outside [0, 1] or not finite")
            continue
        if direct is not None and not np.array_equal(p, direct):
            gap = float(np.max(np.abs(p - direct)))
            errors.append(f"{category_input}: scores differ from the model's own by up to {gap:g}")
            continue
        return category_input, p, notes
    raise ImportRefused(
        "the model cannot score the reference sample through its schema: " + "; ".join(errors)
    )


def _seed(est: Any) -> tuple[int | None, str | None]:
    """The random_state all of the estimator's random parts share, or None with a note."""
    params = est.get_params(deep=True)
    values = [v for k, v in params.items() if k.rsplit("__", 1)[-1] in ("random_state", "seed")]
    if not values:
        return None, None
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in values) and len(
        set(int(v) for v in values)
    ) == 1:
        return int(values[0]), None
    if any(v is None for v in values):
        return None, (
            "random_state is None: a refit draws fresh random numbers, so retraining may not "
            "reproduce the model; set random_state and fit again"
        )
    return None, "the estimator's parts use different random states; they are kept as fitted"


def recipe_check(
    est: Any,
    recipe: TrainingRecipe,
    schema: FeatureSchema,
    training: pd.DataFrame,
    reference: pd.DataFrame,
    fav: Any,
    threshold: float,
    category_input: str,
) -> dict[str, Any]:
    """Refit the clone recipe on the training rows and compare scores on the reference sample."""
    y = training[recipe.label].to_numpy()
    try:
        refit = recipe.fit(schema, training, y)
    except Exception as exc:  # noqa: BLE001 - the user's estimator may fail in many ways
        return {"status": "failed", "detail": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    before = DecisionModel(est, schema, fav, threshold, category_input=category_input)
    after = DecisionModel(refit, schema, fav, threshold, category_input=category_input)
    p0, p1 = before.score(reference), after.score(reference)
    gap = float(np.max(np.abs(p0 - p1))) if len(p0) else 0.0
    flips = int(np.sum((p0 >= threshold) != (p1 >= threshold)))
    return {
        "status": "reproduced" if np.array_equal(p0, p1) else "differs",
        "rows": len(p0),
        "max_abs_score_difference": gap,
        "decisions_changed": flips,
    }


def import_fitted(
    registry: ModelRegistry,
    name: str,
    version: str,
    artifact: str | Path | None = None,
    *,
    estimator: Any = None,
    reference: str | Path | pd.DataFrame,
    schema: str | Path | Sequence[Mapping[str, Any]] | None = None,
    training: str | Path | pd.DataFrame | None = None,
    label: str | None = None,
    sample_weight: str | None = None,
    id_column: str | None = None,
    seed: int | None = None,
    favourable: Any = 1,
    threshold: float = 0.5,
    trust_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    action_set: str | Path | None = None,
    source: Mapping[str, Any] | None = None,
    notes: str = "",
) -> ImportReport:
    """Register a fitted binary classifier (a scikit-learn estimator or Pipeline, or XGBoost
    or LightGBM through their scikit-learn API) as a new, undeployed version.

    Steps: load the artifact safely (:func:`read_artifact`); derive the schema from the
    model's feature names and encoders and the reference sample, then apply ``schema``
    overrides (the user's hard bounds, ranges and categories); score the sample through the
    schema and refuse a model that cannot, or whose scores would differ from its own; record
    a clone recipe with the seed and sample-weight column; with training data, refit the
    recipe and record whether it reproduces the model; record which exact paths apply.

    Parameters
    ----------
    registry : ModelRegistry
    name, version : str
    artifact : str or Path, optional
        A ``.skops`` file, or ``.pkl``/``.joblib`` with ``trust_pickle``.
    estimator : object, optional
        An estimator already in memory instead of ``artifact`` (say, one a registry client
        verified and loaded); ``source`` should then say where it came from.
    reference : str, Path or DataFrame
        Rows the model can score (CSV or Parquet): dtypes, ranges and categories come from
        them; without training data they also fit the recourse cost and the explainer's
        background. Only the feature columns are kept.
    schema : str, Path or list of dict, optional
        Entries ``{"name": ..., field: value}`` overriding the inferred schema (JSON file:
        a list, or an object with a ``features`` list).
    training : str, Path or DataFrame, optional
        The rows the model was fitted on, with ``label`` (and ``sample_weight``,
        ``id_column``); kept in the version's folder for retraining checks.
    label, sample_weight, id_column : str, optional
    seed : int, optional
        Random state of refits; default the estimator's own, when all its parts share one.
    favourable : object, default=1
        The class that means approval (compared as text too).
    threshold : float, default=0.5
    trust_pickle : bool, default=False
    trusted_types : sequence of str, default=()
        skops types outside the allow-list that the user trusts.
    action_set : str or Path, optional
    source : mapping, optional
        Extra fields for the manifest's ``source`` (a registry client's URI, run id, ...).
    notes : str, default=""

    Returns
    -------
    ImportReport

    Raises
    ------
    ImportRefused
        If the artifact is unsafe or unreadable, or the model cannot score the sample.
    ManifestError
        If the version exists, or the schema overrides or training data are malformed.
    """
    if (artifact is None) == (estimator is None):
        raise ImportRefused("give exactly one of an artifact file or an estimator")
    if not 0.0 < threshold < 1.0:
        raise ManifestError(f"decision threshold {threshold} must lie strictly between 0 and 1")
    if registry.path(name, version).exists():
        raise ManifestError(f"model {name} version {version} already exists")
    if artifact is not None:
        est, src = read_artifact(artifact, trust_pickle=trust_pickle, trusted_types=trusted_types)
    else:
        est, src = estimator, {"format": "object"}
    src = {**src, "imported_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
           **dict(source or {})}
    ref_raw = reference if isinstance(reference, pd.DataFrame) else read_table(reference,
                                                                                 "reference")
    if ref_raw.empty:
        raise ImportRefused("the reference sample has no rows")
    fav = _favourable(est, favourable)
    inferred, notes_out = infer_schema(est, ref_raw)
    feature_schema = inferred.with_overrides(_schema_overrides(schema))
    category_input, scores, more = _score_sample(est, feature_schema, fav, threshold, ref_raw)
    notes_out += more
    ref = conform(ref_raw, feature_schema)

    found_seed, seed_note = _seed(est)
    if seed_note and seed is None:
        notes_out.append(seed_note)
    recipe = TrainingRecipe(
        CLONE,
        seed=seed if seed is not None else found_seed,
        label=label or "label",
        sample_weight=sample_weight,
        category_input=category_input,
        template=_Held(est),
    )
    train = None
    if training is not None:
        if label is None:
            raise ManifestError("training data need --label, the column holding the outcome")
        train_raw = training if isinstance(training, pd.DataFrame) else read_table(
            training, "training")
        keep = [c for c in (label, sample_weight, id_column) if c]
        absent = [c for c in [*feature_schema.names, *keep] if c not in train_raw.columns]
        if absent:
            raise ManifestError(f"training data lack column(s) {', '.join(absent)}")
        train = conform(train_raw, feature_schema, keep)
        check = recipe_check(est, recipe, feature_schema, train, ref, fav, threshold,
                             category_input)
    else:
        check = {"status": "not checked", "detail": "no training data given"}
    model = DecisionModel(est, feature_schema, fav, threshold, category_input=category_input)
    paths = exact_paths(model, ref)
    review = [s.name for s in feature_schema if s.review]
    unavailable = [] if train is not None else list(NEEDS_TRAINING)
    report = {
        "scored_rows": len(scores),
        "approved_share": round(float(np.mean(scores >= threshold)), 4),
        "exact_paths": paths,
        "recipe_check": check,
        "schema_review": review,
        "unavailable_without_training_data": unavailable,
        "notes": notes_out,
    }
    manifest = registry.register(
        name,
        version,
        est,
        feature_schema,
        recipe,
        favourable_class=fav,
        threshold=threshold,
        notes=notes,
        action_set_path=action_set,
        source=src,
        reference=ref,
        training=train,
        training_label=label,
        training_id_column=id_column,
        trusted_types=src.get("trusted_types", ()),
        category_input=category_input,
        import_report=report,
    )
    return ImportReport(
        manifest=manifest,
        scored_rows=len(scores),
        approved_share=report["approved_share"],
        exact_paths=paths,
        recipe_check=check,
        schema_review=review,
        unavailable=unavailable,
        notes=notes_out,
    )


__all__ = [
    "NEEDS_TRAINING",
    "ImportReport",
    "conform",
    "feature_names",
    "import_fitted",
    "infer_schema",
    "read_artifact",
    "read_table",
]
