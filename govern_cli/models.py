"""`govern models`: the registry's versions, their manifests, codebooks, and registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    EXIT_CHECK_FAILED,
    AsJson,
    Db,
    Home,
    console,
    deployed_version_or_exit,
    emit_json,
    env,
    err,
    fail,
    models_app,
    registry,
    sessions,
    ui,
)
from governance.exceptions import GovernanceError

# governance.registry.training.ESTIMATORS, spelled out: importing the registry costs seconds
# (scikit-learn) on every `govern` start; a test keeps the two lists equal.
ESTIMATOR_NAMES = (
    "logistic_regression",
    "hist_gradient_boosting",
    "gradient_boosting",
    "random_forest",
    "decision_tree",
    "mlp",
    "xgboost",
    "lightgbm",
)


@models_app.command("list")
def models_list(home: Home = None, db: Db = None, as_json: AsJson = False) -> None:
    """Registered models and versions: deployed (yes/no) and deployment state from the
    ledger, created, estimator, test metrics."""
    from governance.store import deployments

    env(home, db)
    reg = registry(home)
    rows = []
    with sessions(db, home)() as session:
        states = {
            (name, version): deployments.version_state(session, name, version)
            for name in reg.names()
            for version in reg.versions(name)
        }
    for name in reg.names():
        for version in reg.versions(name):
            m = reg.manifest(name, version)
            state = states[(name, version)]
            rows.append(
                {
                    "model": name,
                    "version": version,
                    "deployed": state == deployments.DEPLOYED,
                    "state": state or "registered",
                    "created_at": m.created_at.isoformat(),
                    "estimator": m.recipe.estimator,
                    "sha256": m.artifact_sha256,
                    **m.metrics,
                }
            )
    if as_json:
        emit_json(rows)
        return
    render.models_table(console, rows, reg.root)


@models_app.command("show")
def models_show(
    name: str,
    version: Annotated[str | None, typer.Argument(help="Default: the deployed version.")] = None,
    home: Home = None,
    db: Db = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Accepted for uniformity: the manifest is JSON anyway.")
    ] = False,
) -> None:
    """A version's manifest as JSON (default: the deployed version), with its codebook and
    its deployment history from the ledger."""
    from governance.registry.codebook import load_codebook
    from governance.store import deployments

    env(home, db)
    reg = registry(home)
    if version is None:
        reg.versions(name)  # a hostile name stops here, before it reaches the ledger
        version = deployed_version_or_exit(name, db, home)
    else:
        reg.manifest(name, version)
    with sessions(db, home)() as session:
        history = deployments.deployment_history(session, name, version)
    manifest = reg.manifest(name, version).to_dict()
    book = load_codebook(reg, name, version)
    emit_json(
        {
            **manifest,
            "codebook": book.to_dict() if book else None,
            "deployment_history": history,
        }
    )


@models_app.command("codebook")
def models_codebook(
    name: str,
    version: str,
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            help="JSON ({features: {name: label}, values: {name: {code: label}}}) or CSV "
            "with columns column, code, meaning (an empty code names the feature).",
        ),
    ],
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Attach a codebook to a registered version: display names for its features and labels
    for its category codes, used wherever a reason, value or action is shown. It changes what
    is displayed, never what is computed."""
    from governance.registry.codebook import read_codebook, save_codebook

    reg = registry(home)
    book = read_codebook(file)
    path = save_codebook(reg, name, version, book)
    if as_json:
        emit_json({"model": name, "version": version, "path": path, **book.to_dict()})
        return
    labelled = sum(len(v) for v in book.values.values())
    console.print(
        f"codebook of {name} {version}: {len(book.features)} feature name(s), "
        f"{labelled} category label(s) -> {path}"
    )


@models_app.command("register")
def models_register(
    name: str,
    version: str,
    data: Annotated[
        Path,
        typer.Option(exists=True, dir_okay=False, help="Training data (Parquet): features, label."),
    ],
    label: Annotated[str, typer.Option(help="Label column.")],
    estimator: Annotated[
        str,
        typer.Option(
            help=f"Estimator: one of {', '.join(ESTIMATOR_NAMES)}, or a scikit-learn, XGBoost or "
            "LightGBM class path (e.g. sklearn.svm.SVC)."
        ),
    ],
    params: Annotated[str, typer.Option(help="Estimator parameters as JSON.")] = "{}",
    seed: Annotated[int, typer.Option(help="Random seed of the recipe.")] = 0,
    favourable: Annotated[str, typer.Option(help="Favourable label value.")] = "1",
    threshold: Annotated[
        float,
        typer.Option(help="Approve when P(favourable) >= this; strictly between 0 and 1."),
    ] = 0.5,
    features: Annotated[
        str | None,
        typer.Option(help="Comma-separated feature columns (default: all but label and ids)."),
    ] = None,
    action_set: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="Action set JSON to attach.")
    ] = None,
    codebook: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Codebook to attach (see `govern models codebook`).",
        ),
    ] = None,
    owned_data: Annotated[
        bool,
        typer.Option(
            "--owned-data",
            help="The data file is ours to rewrite when a subject is erased. Without it a file "
            "outside the data folder is left as it is and its owner gets an erasure notice.",
        ),
    ] = False,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Train a version from a recipe on a Parquet file and register it (not deployed)."""
    from governance.registry.codebook import read_codebook, save_codebook
    from governance.registry.registration import register_from_data

    if not 0.0 < threshold < 1.0:
        fail(f"--threshold {threshold} must lie strictly between 0 and 1")
    try:
        parsed = json.loads(params)
    except ValueError as exc:
        fail(f"--params is not JSON: {exc}")
    if not isinstance(parsed, dict):
        fail("--params must be a JSON object, e.g. '{\"max_iter\": 200}'")
    book = read_codebook(codebook) if codebook else None
    if book is not None:  # refused before training, not after: registration cannot be undone
        import pyarrow.parquet as pq

        try:
            book.check(features.split(",") if features else pq.read_schema(data).names)
        except (OSError, ValueError) as exc:
            if not isinstance(exc, GovernanceError):
                fail(f"training data {data} is not a readable Parquet file ({exc})")
            raise
    reg = registry(home, must_exist=False)
    with ui(as_json).status(f"Training {name} {version}"):
        manifest = register_from_data(
            reg,
            name,
            version,
            data,
            label=label,
            estimator=estimator,
            params=parsed,
            seed=seed,
            favourable=favourable,
            threshold=threshold,
            features=features.split(",") if features else None,
            action_set=action_set,
            owned=owned_data,
        )
    if book is not None:
        save_codebook(reg, name, version, book)
    if as_json:
        emit_json(manifest.to_dict())
        return
    metrics = ", ".join(f"{k} {v}" for k, v in manifest.metrics.items())
    console.print(
        f"registered {manifest.name} {manifest.version} "
        f"(sha256 {manifest.artifact_sha256[:12]}…); holdout: {metrics}"
    )


@models_app.command("import")
def models_import(
    name: str,
    version: str,
    reference_data: Annotated[
        Path,
        typer.Option(
            "--reference-data",
            help="Rows the model can score (CSV or Parquet): dtypes, ranges and categories.",
        ),
    ],
    artifact: Annotated[
        Path | None,
        typer.Option(help="Fitted model: a .skops file (or .pkl/.joblib with --trust-pickle)."),
    ] = None,
    from_uri: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="An MLflow registry version instead of a file: models:/NAME@ALIAS or "
            "models:/NAME/VERSION, from $MLFLOW_TRACKING_URI (needs the mlflow extra).",
        ),
    ] = None,
    schema: Annotated[
        Path | None,
        typer.Option(help="JSON list of schema entries overriding what was inferred."),
    ] = None,
    training_data: Annotated[
        Path | None,
        typer.Option("--training-data", help="Rows the model was fitted on (CSV or Parquet)."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="Label column of the training data.")] = None,
    sample_weight: Annotated[
        str | None, typer.Option("--sample-weight", help="Sample-weight column of the fit.")
    ] = None,
    id_column: Annotated[
        str | None, typer.Option("--id-column", help="Subject-id column of the training data.")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random state of refits (default: the model's own).")
    ] = None,
    favourable: Annotated[str, typer.Option(help="Favourable (approval) class.")] = "1",
    threshold: Annotated[float, typer.Option(help="Approve when P(favourable) >= this.")] = 0.5,
    action_set: Annotated[Path | None, typer.Option(help="Action set JSON to attach.")] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load a pickle/joblib file, which can run code: only for files you trust.",
        ),
    ] = False,
    trust_type: Annotated[
        list[str] | None,
        typer.Option(
            "--trust-type", help="A skops type outside the allow-list that you trust (repeat)."
        ),
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Register a model fitted elsewhere (undeployed), from a file or an MLflow registry: its
    schema from the model and the reference sample, a check that it scores the sample, and its
    retrain recipe."""
    from governance.registry.importing import import_fitted

    if (artifact is None) == (from_uri is None):
        fail("give exactly one of --artifact FILE or --from models:/NAME@ALIAS")
    reg = registry(home, must_exist=False)  # an import may start the registry
    options = {
        "reference": reference_data,
        "schema": schema,
        "training": training_data,
        "label": label,
        "sample_weight": sample_weight,
        "id_column": id_column,
        "seed": seed,
        "favourable": favourable,
        "threshold": threshold,
        "trust_pickle": trust_pickle,
        "trusted_types": tuple(trust_type or ()),
        "action_set": action_set,
    }
    if from_uri is not None:
        from governance.registry.mlflow_source import import_from_mlflow

        report = import_from_mlflow(reg, name, version, from_uri, **options)
    else:
        report = import_fitted(reg, name, version, artifact, **options)
    if as_json:
        emit_json(report.to_dict())
        return
    render.import_report(console, report.to_dict())


@models_app.command("sync")
def models_sync(
    models: Annotated[
        list[str] | None,
        typer.Argument(help="MLflow registered models (default: $GOVERNANCE_MLFLOW_MODELS)."),
    ] = None,
    champion: Annotated[str, typer.Option(help="The alias marking production.")] = "champion",
    challenger: Annotated[
        str, typer.Option(help="The alias that proposes a version for the gate.")
    ] = "challenger",
    gate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Largest acceptable invalidation rate.")
    ] = 0.10,
    variants: Annotated[int, typer.Option(help="Retrained variants for forward validity.")] = 10,
    reference_data: Annotated[
        Path | None,
        typer.Option(
            "--reference-data",
            help="Sample an import scores (default: the deployed version's rows).",
        ),
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option("--trust-pickle", help="Import MLflow models saved as pickle (runs code)."),
    ] = False,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Poll MLflow aliases ($MLFLOW_TRACKING_URI) and record every move in the ledger; check a
    version the challenger alias proposes and move champion to it only if the check passes; a
    champion moved by hand is recorded as deployed unchecked, raises an alarm and is checked.
    Exits 3 when there is an alarm."""
    from flows.mlflow_sync import mlflow_sync
    from flows.runtime import prefect_api

    env(home, db)
    with ui(as_json).status("Syncing MLflow aliases"), prefect_api():
        summary = mlflow_sync(
            models=list(models or []) or None,
            champion=champion,
            challenger=challenger,
            gate=gate,
            variants=variants,
            reference_data=str(reference_data) if reference_data else None,
            trust_pickle=trust_pickle,
        )
    if as_json:
        emit_json(summary)
    else:
        for name, result in summary["models"].items():
            now = ", ".join(f"{a} -> {v}" for a, v in result["aliases"].items())
            console.print(f"{name}: {now}")
            for m in result["moves"]:
                console.print(f"  {m['alias']}: {m['from']} -> {m['to']} ({m['via']}, "
                              f"{m['action']})")
            for c in result["checks"]:
                console.print(f"  check of {c['version']}: "
                              f"{'passed' if c['passed'] else 'FAILED'} (run {c['run_id']})")
    for alarm in summary["alarms"]:
        err.print(f"[bold red]ALARM:[/] {alarm}")
    if summary["alarms"]:
        raise typer.Exit(EXIT_CHECK_FAILED)


@models_app.command("aliases")
def models_aliases(
    name: Annotated[str | None, typer.Argument(help="MLflow registered model.")] = None,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """The ledger's history of MLflow alias moves (MLflow keeps only the current ones)."""
    from governance.store import aliases

    env(home, db)
    with sessions(db, home)() as session:
        rows = aliases.alias_history(session, name)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(
            f"{r['observed_at']:%Y-%m-%d %H:%M} {r['registered_model']}@{r['alias']}: "
            f"{r['previous_version']} -> {r['version']} ({r['via']}, {r['action']})"
        )


@models_app.command("webhook")
def models_webhook(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    as_json: AsJson = False,
) -> None:
    """Receive MLflow registry webhooks at /mlflow (secret: $GOVERNANCE_MLFLOW_WEBHOOK_SECRET):
    a signed alias move becomes a Prefect event that starts the mlflow-sync deployment; a bad
    signature is refused (401) and logged. Runs until stopped."""
    import logging
    import os

    from govern_cli.mlflow_webhook import ENV_SECRET, PATH, make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    secret = os.environ.get(ENV_SECRET, "")
    if not secret:
        fail(f"set ${ENV_SECRET} to the secret the MLflow webhook was created with")
    server = make_server(host, port, secret)
    url = f"http://{host}:{server.server_address[1]}{PATH}"
    if as_json:
        emit_json({"listening": url})
    else:
        err.print(f"listening on {url}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
