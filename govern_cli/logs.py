"""`govern log`: check a decision log against a model version's contract, running nothing."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from govern_cli.app import AsJson, Home, app, console, parse_date, registry

log_app = typer.Typer(
    help="Decision logs: check a file or folder against a model's contract.",
    no_args_is_help=True,
)
app.add_typer(log_app, name="log", rich_help_panel="Models and deployment")

ModelOption = Annotated[
    tuple[str, str],
    typer.Option("--model", metavar="NAME VERSION", help="The model version the log must fit."),
]


@log_app.command("check")
def log_check(
    path: Annotated[
        str,
        typer.Argument(
            help="A CSV or Parquet file, a folder of decision_date=YYYY-MM-DD partitions, or "
            "csv:PATH / parquet:PATH to declare the format."
        ),
    ],
    model: ModelOption,
    columns: Annotated[
        str | None,
        typer.Option(help="Map the log's column names: decision_id=app_id,subject_id=cust."),
    ] = None,
    night: Annotated[
        str | None, typer.Option("--date", help="Only this UTC decision date, YYYY-MM-DD.")
    ] = None,
    home: Home = None,
    as_json: AsJson = False,
) -> None:
    """Validate a log against a model's schema without running anything: exit 0 when every
    row would be processed, 3 when some would be quarantined."""
    from governance.intake.decision_log import open_source
    from governance.intake.log_check import check_log
    from governance.intake.validation import ModelContract

    name, version = model
    manifest = registry(home).manifest(name, version)
    source = open_source(path, None, columns)
    nights = [parse_date(night)] if night else None
    results = check_log(
        source, (name, version), ModelContract(manifest.schema, manifest.threshold), nights
    )
    failed = any(r.status == "failed" for r in results)
    if as_json:
        print(json.dumps({"log": source.describe(), "model": [name, version],
                          "nights": [r.to_dict() for r in results]}))
    else:
        _render(source.describe(), results)
    if failed:
        raise typer.Exit(3)


def _render(where: str, results: list) -> None:
    from rich.markup import escape
    from rich.table import Table

    if not results:
        console.print(f"{escape(where)}: no nights found")
        return
    table = Table(title=f"Decision log {escape(where)}")
    for col in ("night", "status", "rows", "valid", "quarantined", "out of range"):
        table.add_column(col, justify="left" if col in ("night", "status") else "right")
    for r in results:
        table.add_row(r.night.isoformat(), r.status, f"{r.rows:,}", f"{r.valid:,}",
                      f"{r.quarantined:,}", f"{r.out_of_range:,}")
    console.print(table)
    for r in results:
        if r.other_models:
            console.print(f"  {r.night} {r.other_models:,} rows of other models not checked")
        for c in r.checks:
            console.print(f"  {r.night} {escape(str(c['check']))} on {escape(str(c['column']))}: "
                          f"{c['failed_rows']:,} rows quarantined")
        for f in r.flags:
            console.print(f"  {r.night} {escape(str(f['column']))} beyond its observed range: "
                          f"{f['flagged_rows']:,} rows flagged (processed)")
