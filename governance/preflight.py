"""The checks of a nightly run that need neither Prefect nor Dask.

Run before a Prefect server or a Dask cluster starts (about 20 s together), so that input the
run would refuse anyway is refused in seconds, and the ledger is left as it was: the ledger
opens with the given credentials, no other process is running the night, a named model is
registered, and the night's log can be read and has every column its versions require, each
once, with zoned timestamps. Row-level problems are not errors here: the run quarantines those
rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from governance import config
from governance.exceptions import RunInProgress, UnknownModelVersion
from governance.intake.decision_log import read_model_night, source_for
from governance.intake.validation import ModelContract, check_night_structure, contracts_for
from governance.registry.model_registry import ModelRegistry
from governance.store.engine import init_store
from governance.store.locks import holder_of, run_lock_key


def check_nightly(
    night: date,
    model: str | None = None,
    home: str | None = None,
    db: str | None = None,
    log: str | None = None,
    columns: dict[str, str] | None = None,
    *,
    wait: float = 0.0,
) -> dict[str, Any]:
    """Check what a nightly run of ``night`` needs, without writing anything but a new ledger's
    schema.

    Parameters
    ----------
    night : date
    model, home, db, log, columns
        As for the nightly flow (one run per night: ``model`` limits the work, not the run,
        and the whole night is validated).
    wait : float, default=0
        When positive, another process holding the night is not an error (the run will wait).

    Returns
    -------
    dict
        ``rows`` (the night's rows) and ``log`` (the source).

    Raises
    ------
    StoreError, NotFound, RunInProgress, DecisionLogError
        Each with a one-line message naming the value and what was expected.
    """
    db_url = config.db_url(db, home)
    engine = init_store(db_url)
    try:
        holder = None if wait else holder_of(engine, run_lock_key("nightly", night, None))
    finally:
        engine.dispose()
    if holder is not None:
        raise RunInProgress(holder.line())
    registry = ModelRegistry(config.registry_dir(home))
    if model is not None and not registry.versions(model):
        raise UnknownModelVersion(
            f"model {model!r} is not in registry {registry.root}; known: "
            + (", ".join(registry.names()) or "none")
        )
    source = source_for(log or str(config.decision_log_dir(home)), db_url, columns)
    frame = read_model_night(source, night, None)
    if len(frame):
        manifests = contracts_for(frame, registry)
        contracts = {k: ModelContract(m.schema, m.threshold) for k, m in manifests.items()}
        check_night_structure(frame, night, contracts)
    return {"rows": len(frame), "log": source.describe()}
