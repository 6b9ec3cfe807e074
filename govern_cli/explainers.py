"""`govern explainers`: compare and choose a version's explainer, and read the quality of the
reasons the ledger holds."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from govern_cli import render
from govern_cli.app import (
    AsJson,
    Db,
    Home,
    console,
    emit_json,
    explainers_app,
    registry,
    sessions,
    ui,
)


@explainers_app.command("compare")
def explainers_compare(
    model: Annotated[
        tuple[str, str],
        typer.Option("--model", help="Model name and version, e.g. --model credit-default v2."),
    ],
    sample: Annotated[
        int, typer.Option(help="Denials (training rows the version denies) to explain.")
    ] = 200,
    seed: Annotated[int, typer.Option(help="Seeds the sample, background and noise.")] = 0,
    stability_rows: Annotated[
        int, typer.Option(help="Rows of the sample whose RIS and ROS are measured.")
    ] = 50,
    permutation_stability_rows: Annotated[
        int,
        typer.Option(help="Fewer for the permutation explainer (100 neighbours each, slow)."),
    ] = 5,
    store: Annotated[
        bool,
        typer.Option(
            "--store/--no-store",
            help="Record the recommended explainer and the evidence with the version; the "
            "nightly run then uses it.",
        ),
    ] = True,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """Run every candidate explainer on a sample of denials and recommend one by a stated
    rule: faithfulness, stability, agreement and cost side by side."""
    from governance.explain.selection import compare_explainers
    from governance.store import writes

    name, version = model
    reg = registry(home)
    loaded = reg.load(name, version)
    manifest = reg.manifest(name, version)
    if manifest.training_data is None:
        raise typer.BadParameter(f"{name} {version} has no training data to sample from")
    with ui(as_json).status(f"Comparing explainers of {name} {version}"):
        result = compare_explainers(
            loaded,
            reg.training_frame(name, version),
            sample=sample,
            seed=seed,
            stability_rows=stability_rows,
            permutation_stability_rows=permutation_stability_rows,
        )
    if store:
        with sessions(db, home, write=True).begin() as session:
            mv_id = writes.ensure_model_version(session, manifest)
            writes.record_explainer_choice(
                session,
                mv_id,
                result.recommended,
                rule=result.rule,
                evidence=result.evidence(),
                sample_rows=int(result.settings["sample"]["rows"]),
                seed=seed,
            )
    if as_json:
        emit_json({"model": name, "version": version, "stored": store, **result.evidence()})
        return
    render.explainer_comparison(console, name, version, result, stored=store)


@explainers_app.command("show")
def explainers_show(
    name: str, version: str, home: Home = None, db: Db = None, as_json: AsJson = False
) -> None:
    """The explainer chosen for a version, with the rule and the evidence it was chosen on."""
    from governance.store.quality import explainer_choice

    with sessions(db, home)() as session:
        choice = explainer_choice(session, name, version)
    if as_json:
        emit_json(choice)
        return
    render.explainer_choice(console, name, version, choice)


@explainers_app.command("quality")
def explainers_quality(
    model: Annotated[str | None, typer.Option(help="Only this model's versions.")] = None,
    flagged: Annotated[
        int,
        typer.Option(
            help="Also list this many denials whose reasons' PGI is not above the random "
            "control's."
        ),
    ] = 0,
    home: Home = None,
    db: Db = None,
    as_json: AsJson = False,
) -> None:
    """The distribution of explanation quality per model version (faithfulness, stability,
    agreement), from the view v_explanation_quality_by_version."""
    from governance.store.quality import quality_by_version, reasons_not_above_random

    with sessions(db, home)() as session:
        table = quality_by_version(session, model)
        flags = (
            reasons_not_above_random(session, model, limit=flagged) if flagged else None
        )
    if as_json:
        out = {"by_version": json.loads(table.to_json(orient="records", date_format="iso"))}
        if flags is not None:
            out["reasons_not_above_random"] = json.loads(
                flags.to_json(orient="records", date_format="iso")
            )
        emit_json(out)
        return
    render.quality_by_version(console, table)
    if flags is not None:
        render.frame_table(
            console,
            flags[["decision_id", "model_version", "reasons", "pgi", "pgi_random", "pgu"]],
            title="Denials whose reasons' PGI is not above the random control's",
        )
