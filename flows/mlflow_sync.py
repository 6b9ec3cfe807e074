"""Keep the gate in front of an MLflow model registry: record every alias move, check what a
``challenger`` alias proposes, and move ``champion`` only after a passed check.

MLflow keeps only where each alias points now; this flow compares that with the ledger's
alias history (``mlflow_alias_events``) and records every difference. What a move means:

- ``challenger`` points at a version never checked: the version is imported (the registry
  keeps its own skops copy), proposed, and checked by the redeploy check; only a passed check
  deploys it and then moves ``champion`` to it (recorded, ``via`` governance). The verdict is
  written back as tags of the MLflow version either way.
- ``champion`` points somewhere we did not put it (moved by hand): the version is recorded as
  deployed unchecked (a forced deployment with that reason), the summary raises an alarm, and
  the check runs at once; its verdict goes back as tags.

It runs on a schedule and when the webhook receiver reports a move (deploy/prefect.yaml);
a lost webhook is caught by the next scheduled run.
"""

from __future__ import annotations

import os
from typing import Any

from prefect import flow, get_run_logger

from flows.redeploy import DEFAULT_GATE, RETENTION_MONTHS, redeploy_check
from flows.runtime import task_runner
from governance import config
from governance.exceptions import GateFailed, GovernanceError
from governance.registry import mlflow_source
from governance.registry.model_registry import ModelRegistry
from governance.store import aliases, deployments, init_store
from tasks import worker

ENV_MODELS = "GOVERNANCE_MLFLOW_MODELS"
REFERENCE_ROWS = 2_000
DEPLOYED_UNCHECKED = "deployed unchecked"


def watched_models(models: list[str] | None) -> list[str]:
    """The registered models to watch: ``models``, else $GOVERNANCE_MLFLOW_MODELS (commas)."""
    names = list(models or [])
    if not names:
        names = [m.strip() for m in os.environ.get(ENV_MODELS, "").split(",") if m.strip()]
    if not names:
        raise GovernanceError(
            f"no MLflow registered model to watch: name one, or set ${ENV_MODELS}"
        )
    return names


def _reference(registry: ModelRegistry, name: str, deployed: str | None, given: str | None):
    """The sample an import scores: the file given, else rows the deployed version was fitted
    on (or its reference sample)."""
    if given:
        return given
    if deployed is None:
        raise GovernanceError(
            f"{name} has no deployed version to take a reference sample from: pass "
            "--reference-data"
        )
    frame = registry.fit_frame(name, deployed)
    return frame.head(REFERENCE_ROWS)


@flow(name="mlflow-sync", log_prints=True)
def mlflow_sync(
    models: list[str] | None = None,
    home: str | None = None,
    db: str | None = None,
    tracking_uri: str | None = None,
    champion: str = "champion",
    challenger: str = "challenger",
    gate: float = DEFAULT_GATE,
    variants: int = 10,
    recent_days: int = 90,
    window_months: int = RETENTION_MONTHS,
    reference_data: str | None = None,
    trust_pickle: bool = False,
    via: str = aliases.POLL,
    actor: str | None = None,
) -> dict[str, Any]:
    """Poll the watched aliases of MLflow registered models, record every move, and gate.

    Parameters
    ----------
    models : list of str, optional
        Registered model names to watch (each governed under the same name); default
        $GOVERNANCE_MLFLOW_MODELS.
    tracking_uri : str, optional
        Default $MLFLOW_TRACKING_URI.
    champion, challenger : str
        The alias that marks the production version, and the one that proposes a version.
    gate, variants, recent_days, window_months
        Passed to the redeploy check.
    reference_data : str, optional
        Sample an import scores (CSV or Parquet); default the deployed version's rows.
    trust_pickle : bool, default=False
        Import MLflow models saved as pickle (they can run code while loading).
    via : str, default="poll"
        How the moves were noticed: ``poll`` (schedule, command) or ``webhook``.
    actor : str, optional

    Returns
    -------
    dict
        Per model: the aliases now, the moves recorded, checks run, the version promoted,
        and ``alarms`` (also gathered at the top level).
    """
    logger = get_run_logger()
    actor = config.actor(actor)
    db_url = config.db_url(db, home)
    init_store(db_url)
    registry = ModelRegistry(config.registry_dir(home))
    uri = mlflow_source.tracking_uri(tracking_uri)
    client = mlflow_source.client(uri)
    check_options = {
        "home": home, "db": db, "gate": gate, "variants": variants,
        "recent_days": recent_days, "window_months": window_months, "actor": actor,
    }
    out: dict[str, Any] = {"tracking_uri": mlflow_source.mask_uri(uri), "models": {},
                           "alarms": []}
    for name in watched_models(models):
        sync = _Sync(name, client, uri, registry, db_url, actor, via, check_options,
                     reference_data, trust_pickle)
        result = sync.run(champion, challenger)
        for alarm in result["alarms"]:
            logger.error("ALARM: %s", alarm)
        out["models"][name] = result
        out["alarms"].extend(result["alarms"])
    return out


class _Sync:
    """One registered model's sync: its state and the steps that change it."""

    def __init__(self, name, client, uri, registry, db_url, actor, via, check_options,  # noqa: ANN001
                 reference_data, trust_pickle) -> None:
        self.name, self.client, self.registry, self.db_url = name, client, registry, db_url
        self.masked = mlflow_source.mask_uri(uri)
        self.actor, self.via, self.check_options = actor, via, check_options
        self.reference_data, self.trust_pickle = reference_data, trust_pickle
        self.result: dict[str, Any] = {"aliases": {}, "moves": [], "checks": [],
                                       "promoted": None, "alarms": []}

    # -- ledger ----------------------------------------------------------------------------
    def _record(self, alias: str, version: str | None, previous: str | None, via: str,
                action: str, note: str | None = None) -> None:
        with worker.sessions(self.db_url).begin() as session:
            aliases.record_alias_move(
                session, tracking_uri=self.masked, registered_model=self.name, alias=alias,
                version=version, previous_version=previous, via=via, actor=self.actor,
                model_name=self.name, action=action, note=note,
            )
        self.result["moves"].append(
            {"alias": alias, "from": previous, "to": version, "via": via, "action": action}
        )

    def _state(self, alias: str) -> tuple[bool, str | None]:
        with worker.sessions(self.db_url)() as session:
            seen = aliases.last_seen(session, self.name, alias)
        return seen is not None, seen.version if seen is not None else None

    def _deployed(self) -> str | None:
        with worker.sessions(self.db_url)() as session:
            return deployments.deployed_version(session, self.name)

    def _latest_check(self, version: str):  # noqa: ANN202
        with worker.sessions(self.db_url)() as session:
            check = deployments.latest_check(session, self.name, version)
            if check is not None:
                session.expunge(check)
            return check

    # -- steps -----------------------------------------------------------------------------
    def _ensure_imported(self, version: str) -> None:
        if self.registry.path(self.name, version).exists():
            return
        reference = _reference(self.registry, self.name, self._deployed(), self.reference_data)
        mlflow_source.import_from_mlflow(
            self.registry, self.name, version, f"models:/{self.name}/{version}",
            mlflow_client=self.client, reference=reference, trust_pickle=self.trust_pickle,
            notes=f"imported from MLflow {self.masked} by govern models sync",
        )

    def _check(self, version: str, *, deploy: bool) -> dict[str, Any]:
        via = f"mlflow sync ({self.via})"
        if deploy:
            with worker.sessions(self.db_url).begin() as session:
                deployments.propose_candidate(
                    session, self.name, version, actor=self.actor, via=via,
                    reason=f"MLflow alias moved to version {version}",
                )
        # the task runner read now, not at import: the Dask address may be set since
        check_flow = redeploy_check.with_options(task_runner=task_runner())
        try:
            summary = check_flow(model=self.name, version=version, deploy=deploy,
                                 **self.check_options)
            passed = True
        except GateFailed as exc:
            summary, passed = exc.summary, False
        counts = summary.get("counts", {})
        rate = counts.get("invalidation_rate")
        tags = mlflow_source.write_verdict(
            self.client, self.name, version, passed=passed, invalidation_rate=rate,
            run_id=summary.get("run_id"), model=f"{self.name} {version}",
        )
        check = {"version": version, "passed": passed, "invalidation_rate": rate,
                 "run_id": summary.get("run_id"), "deployed": bool(summary.get("deployed")),
                 "tags": tags}
        self.result["checks"].append(check)
        return check

    def _champion(self, alias: str, now: str | None) -> None:
        _, before = self._state(alias)
        if now == before:
            return
        if now is None:
            self._record(alias, None, before, self.via, "removed")
            self.result["alarms"].append(
                f"{self.name}@{alias} was removed in MLflow (it pointed at {before})"
            )
            return
        deployed = self._deployed()
        if now == deployed:
            self._record(alias, now, before, self.via, "matches deployed")
            return
        try:
            self._ensure_imported(now)
        except GovernanceError as exc:
            self._record(alias, now, before, self.via, DEPLOYED_UNCHECKED, note=str(exc))
            self.result["alarms"].append(
                f"{self.name}@{alias} moved by hand to version {now} (was {before}), which "
                f"could not be imported, so it is unchecked: {exc}"
            )
            return
        with worker.sessions(self.db_url).begin() as session:
            first = deployments.deployed_version(session, self.name) is None
            deployments.record_deployment(
                session, self.name, now, actor=self.actor, via=f"mlflow sync ({self.via})",
                forced=not first,
                reason=None if first else (
                    f"{alias} alias moved by hand in MLflow from {before} to {now}: "
                    "deployed unchecked"
                ),
            )
        if first:
            self._record(alias, now, before, self.via, "first deployment")
            return
        self._record(alias, now, before, self.via, DEPLOYED_UNCHECKED)
        check = self._check(now, deploy=False)
        self.result["alarms"].append(
            f"{self.name}@{alias} moved by hand to version {now} (was {before}): recorded as "
            f"deployed unchecked; checked at once: {'passed' if check['passed'] else 'FAILED'}"
        )

    def _challenger(self, alias: str, champion: str, now: str | None,
                    champion_now: str | None) -> str | None:
        known, before = self._state(alias)
        if (known or now is not None) and now != before:
            self._record(alias, now, before, self.via, "proposed" if now else "removed")
        if now is None or now == champion_now:
            return champion_now
        check = self._latest_check(now)
        if check is None:
            try:
                self._ensure_imported(now)
            except GovernanceError as exc:
                self.result["alarms"].append(
                    f"{self.name}@{alias} proposes version {now}, which could not be "
                    f"imported: {exc}"
                )
                return champion_now
            passed = self._check(now, deploy=True)["passed"]
        else:
            passed = bool(check.passed)
        if passed and self._deployed() == now:
            self._promote(champion, now, champion_now, f"{alias} version {now} passed the "
                          "redeploy check")
            return now
        return champion_now

    def _promote(self, alias: str, version: str, before: str | None, note: str) -> None:
        """Move ``alias`` in MLflow and record it in one step: the row commits only after the
        move succeeded, and (a webhook answering our own move starts another sync) at once."""
        with worker.sessions(self.db_url).begin() as session:
            aliases.record_alias_move(
                session, tracking_uri=self.masked, registered_model=self.name, alias=alias,
                version=version, previous_version=before, via=aliases.GOVERNANCE,
                actor=self.actor, model_name=self.name, action="promoted", note=note,
            )
            mlflow_source.move_alias(self.client, self.name, alias, version)
        self.result["moves"].append({"alias": alias, "from": before, "to": version,
                                     "via": aliases.GOVERNANCE, "action": "promoted"})
        self.result["promoted"] = version

    def run(self, champion: str, challenger: str) -> dict[str, Any]:
        current = mlflow_source.aliases(self.client, self.name)
        self._champion(champion, current.get(champion))
        current[champion] = self._challenger(challenger, champion, current.get(challenger),
                                             current.get(champion))
        self.result["aliases"] = {a: current.get(a) for a in (champion, challenger)}
        return self.result


__all__ = ["DEPLOYED_UNCHECKED", "ENV_MODELS", "mlflow_sync", "watched_models"]
