"""What produced a nightly chunk's rows: its input rows, the settings that change results, and
the code that ran.

A resumed or repeated run skips a chunk only when all three match what the ledger recorded for
it; anything else recomputes it, so a row is never attributed to settings or code that did not
produce it. The three parts:

- the rows: :func:`governance.chunk.chunk_sha256`, a hash of every value of the chunk's log
  rows, so a corrected row under the same decision id is recomputed;
- the settings: :func:`result_settings`, **the one list of every option that changes a
  chunk's rows**, with defaults filled in, so two spellings of the same run (``max_points``
  left out or given as the default) are the same settings. The chunk task configures itself
  from the dict it returns, so what is recorded is what was used. An option that changes
  results joins the key by being added there;
- the code: :func:`code_identity`, the package version and git commit
  (:func:`governance.config.code_version`) and the versions of the numerical libraries.

:func:`provenance_sha256` hashes settings and code together; the ledger stores each distinct
combination once (``result_provenance``) and every nightly chunk and decision row points to
the one that produced it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from governance.config import code_version
from governance.hashing import sha256_bytes

# Score-reproduction policies: keep and flag the rows, quarantine them, or fail the run.
SCORE_MISMATCH_POLICIES = ("flag", "quarantine", "fail")
# Libraries whose versions change numbers in the rows (absent ones are recorded as None).
LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "shap", "xgboost", "lightgbm")
# Defaults of the options (what a run that leaves an option out uses).
DEFAULTS: dict[str, Any] = {
    "recourse": True,
    "n_samples": 500,
    "seed": 0,
    "max_points": None,  # the search's own default, filled in below
    # responsiveness: the paper's early stop ("paper") or reachml 0.2.0a1 as released
    "semantics": "paper",
    "stability": True,
    "stability_k": 1000,
    "stability_sigma": 0.05,
    "robust_tau": None,
    "explainer_background_size": None,  # the explainer's own default, filled in below
    "explainer_seed": 0,
    "top_k": None,  # the explainer's own default, filled in below
    "score_mismatch": "flag",
    # the explainer: "auto" (by model family) or the kind chosen with govern explainers compare
    "explainer_kind": "auto",
    # explanation quality: the switch (off for deletion candidates), faithfulness, and the
    # night's seeded samples (sizes and the key cutoffs drawn from the whole night)
    "quality": True,
    "faithfulness": True,
    "stability_sample": None,
    "stability_sample_permutation": None,
    "agreement_sample": None,
    "stability_cutoff": None,
    "stability_cutoff_permutation": None,
    "agreement_cutoff": None,
}
# Settings of the explanation-quality step: they cannot change its rows when it is off.
QUALITY_KEYS = (
    "faithfulness",
    "stability_sample",
    "stability_sample_permutation",
    "agreement_sample",
    "stability_cutoff",
    "stability_cutoff_permutation",
    "agreement_cutoff",
)


def _number(value: Any) -> Any:
    """Integral floats as ints, so 500 and 500.0 are one setting."""
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        return int(value)
    return value


def result_settings(
    options: Mapping[str, Any] | None = None, model: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Every setting that changes a nightly chunk's rows, normalised.

    Parameters
    ----------
    options : mapping, optional
        Flow options: ``recourse``, ``n_samples``, ``seed``, ``max_points``, ``stability``,
        ``semantics``, ``stability_k``, ``stability_sigma``, ``robust_tau``,
        ``explainer_background_size``,
        ``explainer_seed``, ``top_k``, ``score_mismatch``, ``explainer_kind``, and the
        explanation-quality settings ``quality``, ``faithfulness`` and the samples' sizes and
        cutoffs (:data:`QUALITY_KEYS`). Missing or None means the default;
        other keys are ignored. A dict this function returned is returned unchanged.
    model : mapping, optional
        The model version's inputs (:func:`model_inputs`); default ``options["model"]``.

    Returns
    -------
    dict
        Flat settings (defaults filled in; settings of a switched-off stage set to None, since
        they cannot change its rows) plus ``model``.

    Raises
    ------
    ValueError
        If ``score_mismatch`` is not one of :data:`SCORE_MISMATCH_POLICIES`.
    """
    from governance.explain.explainer import BACKGROUND_SIZE, TOP_K
    from governance.recourse.search import MAX_POINTS

    given = dict(options or {})
    out: dict[str, Any] = {}
    for key, default in DEFAULTS.items():
        value = given.get(key)
        out[key] = _number(default if value is None else value)
    out["recourse"] = bool(out["recourse"])
    out["stability"] = bool(out["stability"]) and out["recourse"]
    if out["max_points"] is None:
        out["max_points"] = MAX_POINTS
    if out["explainer_background_size"] is None:
        out["explainer_background_size"] = BACKGROUND_SIZE
    if out["top_k"] is None:
        out["top_k"] = TOP_K
    if out["score_mismatch"] not in SCORE_MISMATCH_POLICIES:
        raise ValueError(
            f"score_mismatch {out['score_mismatch']!r} is not one of "
            f"{', '.join(SCORE_MISMATCH_POLICIES)}"
        )
    if out["semantics"] not in ("paper", "release"):
        raise ValueError(f"semantics {out['semantics']!r} is not one of paper, release")
    if not out["recourse"]:
        for key in ("n_samples", "seed", "max_points", "semantics", "robust_tau"):
            out[key] = None
    if not out["stability"]:
        for key in ("stability_k", "stability_sigma", "robust_tau"):
            out[key] = None
    out["quality"] = bool(out["quality"])
    out["faithfulness"] = bool(out["faithfulness"]) and out["quality"]
    if not out["quality"]:
        for key in QUALITY_KEYS:
            out[key] = None if key != "faithfulness" else False
    out["model"] = dict(model if model is not None else given.get("model") or {})
    return out


def model_inputs(manifest: Any) -> dict[str, Any]:
    """The registered inputs of a model version that its rows depend on: artifact, training
    data (background rows, the recourse cost and stability spreads are fitted on it, and an
    erasure rewrites it), action set, schema layout and decision rule."""
    td = manifest.training_data
    return {
        "name": manifest.name,
        "version": manifest.version,
        "artifact_sha256": manifest.artifact_sha256,
        "training_sha256": None if td is None else td.sha256,
        "action_set_sha256": manifest.action_set_sha256,
        "schema_sha256": manifest.schema.layout_sha256,
        "threshold": float(manifest.threshold),
        "favourable_class": manifest.favourable_class,
    }


def code_identity() -> dict[str, Any]:
    """The code that runs here: package version and commit, and the numerical libraries."""
    libraries: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            libraries[name] = None
    return {"code_version": code_version(), "libraries": libraries}


def canonical_sha256(obj: Any) -> str:
    """sha256 of ``obj`` as canonical JSON (sorted keys)."""
    return sha256_bytes(json.dumps(obj, sort_keys=True, default=str).encode())


def provenance_sha256(settings: Mapping[str, Any], code: Mapping[str, Any]) -> str:
    """Identity of what produced a set of rows: the settings and the code together."""
    return canonical_sha256({"settings": dict(settings), "code": dict(code)})
