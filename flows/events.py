"""Prefect events the governance flows react to (deploy/prefect.yaml holds the triggers)."""

from __future__ import annotations

import os

MODEL_PROPOSED = "governance.model.proposed"
MODEL_DEPLOYED = "governance.model.deployed"
DELETION_REQUESTED = "governance.deletion.requested"
# An MLflow registry alias moved (a webhook said so): a candidate to sync and check, never a
# deployment. The mlflow-sync deployment runs on it.
MLFLOW_ALIAS_MOVED = "governance.mlflow.alias-moved"


def model_resource(name: str, version: str) -> dict[str, str]:
    """The resource a deployment event is about: one model, with the version as a label."""
    return {
        "prefect.resource.id": f"governance.model.{name}",
        "prefect.resource.name": name,
        "governance.model.version": version,
    }


def emit_model_proposed(
    name: str, version: str, previous: str | None, gate: float, proposed_by: str
) -> bool:
    """Tell the Prefect server a version is proposed for deployment; False when no server is
    configured.

    The redeploy-check deployment (deploy/prefect.yaml) runs on it: it checks the version and
    deploys it only if the gate passes, else its flow run ends Failed.
    """
    if not os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emit_event(
        event=MODEL_PROPOSED,
        resource=model_resource(name, version),
        payload={
            "name": name,
            "version": version,
            "previous_version": previous,
            "gate": gate,
            "proposed_by": proposed_by,
        },
    )
    EventsWorker.drain_all()  # deliver before a short-lived CLI process exits
    return True


def emit_model_deployed(
    name: str, version: str, previous: str | None, *, forced: bool = False, actor: str = ""
) -> bool:
    """Tell the Prefect server a version was deployed (recorded in the ledger just before);
    False when no server is configured. Emitted on a deployment and never otherwise."""
    if not os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emit_event(
        event=MODEL_DEPLOYED,
        resource=model_resource(name, version),
        payload={
            "name": name,
            "version": version,
            "previous_version": previous,
            "forced": forced,
            "deployed_by": actor,
        },
    )
    EventsWorker.drain_all()
    return True


def emit_deletion_requested(request_id: str, model: str | None) -> bool:
    """Tell the Prefect server a deletion request arrived; False when no server is configured."""
    if not os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emit_event(
        event=DELETION_REQUESTED,
        resource={
            "prefect.resource.id": f"governance.deletion.{request_id}",
            "governance.deletion.request": request_id,
        },
        payload={"request_id": request_id, "model": model},
    )
    EventsWorker.drain_all()
    return True


def emit_mlflow_alias_moved(name: str, alias: str, version: str | None, delivery_id: str) -> bool:
    """Tell the Prefect server an MLflow webhook reported an alias move of registered model
    ``name``; False when no server is configured. It proposes nothing by itself: the
    mlflow-sync deployment reads the registry and the ledger and decides."""
    if not os.environ.get("PREFECT_API_URL"):
        return False
    from prefect.events import emit_event
    from prefect.events.worker import EventsWorker

    emit_event(
        event=MLFLOW_ALIAS_MOVED,
        resource={
            "prefect.resource.id": f"governance.mlflow.{name}",
            "prefect.resource.name": name,
            "governance.mlflow.alias": alias,
        },
        payload={"name": name, "alias": alias, "version": version, "delivery_id": delivery_id},
    )
    EventsWorker.drain_all()
    return True
