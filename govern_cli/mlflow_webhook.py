"""The receiver of MLflow registry webhooks: a small process of its own (`govern models webhook`),
apart from the read-only review app.

It accepts only deliveries signed with the webhook's secret (MLflow's HMAC-SHA256 over the
delivery id, timestamp and raw body) and recent (a replay window); anything else is refused
with 401 and logged. An accepted alias move becomes a ``governance.mlflow.alias-moved`` Prefect
event, on which the mlflow-sync deployment runs at once. The event proposes nothing by itself:
the sync reads the registry and the ledger, so a lost or repeated webhook changes nothing the
next scheduled sync would not.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from governance.registry.mlflow_source import verify_signature

ENV_SECRET = "GOVERNANCE_MLFLOW_WEBHOOK_SECRET"
MAX_BODY = 64 * 1024
PATH = "/mlflow"
log = logging.getLogger("governance.mlflow_webhook")

Emit = Callable[[str, str, "str | None", str], bool]


def _default_emit(name: str, alias: str, version: str | None, delivery_id: str) -> bool:
    from flows.events import emit_mlflow_alias_moved

    return emit_mlflow_alias_moved(name, alias, version, delivery_id)


def make_server(
    host: str, port: int, secret: str, emit: Emit | None = None, tolerance_s: float = 300.0
) -> ThreadingHTTPServer:
    """A webhook server on ``host``:``port`` (port 0: any free one), not yet serving."""
    if not secret:
        raise ValueError(f"the webhook secret is empty: set ${ENV_SECRET}")
    emit = emit or _default_emit

    class Handler(BaseHTTPRequestHandler):
        server_version = "governance-webhook"

        def _answer(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") != PATH:
                self._answer(404, {"error": "not found"})
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                log.warning("refused a webhook from %s: body length %s", self.client_address[0],
                            self.headers.get("Content-Length"))
                self._answer(413, {"error": "body too large or of unknown length"})
                return
            body = self.rfile.read(length)
            ok, why = verify_signature(dict(self.headers), body, secret, tolerance_s=tolerance_s)
            delivery = self.headers.get("X-MLflow-Delivery-Id", "")
            if not ok:
                log.warning("refused a webhook from %s (delivery %r): %s",
                            self.client_address[0], delivery[:64], why)
                self._answer(401, {"error": "bad signature"})
                return
            try:
                payload = json.loads(body)
                data = payload.get("data") or {}
                entity = payload.get("entity")
            except (ValueError, AttributeError):
                self._answer(400, {"error": "body is not a JSON object"})
                return
            if entity != "model_version_alias" or not data.get("name") or not data.get("alias"):
                self._answer(200, {"ignored": f"entity {entity!r}"})
                return
            version = data.get("version")
            emitted = emit(str(data["name"]), str(data["alias"]),
                           None if version is None else str(version), delivery)
            log.info("webhook delivery %s: %s@%s -> %s (event emitted: %s)", delivery,
                     data["name"], data["alias"], version, emitted)
            self._answer(200, {"emitted": emitted})

        def do_GET(self) -> None:  # noqa: N802
            self._answer(200 if self.path == "/health" else 404, {})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug(format, *args)

    return ThreadingHTTPServer((host, port), Handler)


__all__ = ["ENV_SECRET", "PATH", "make_server"]
