"""The webhook receiver as a real HTTP server: signed deliveries emit, forged ones are refused."""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

from govern_cli.mlflow_webhook import PATH, make_server
from governance.registry.mlflow_source import sign

SECRET = "webhook-secret"


@pytest.fixture
def receiver():
    emitted = []
    server = make_server("127.0.0.1", 0, SECRET,
                         emit=lambda *args: emitted.append(args) or True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}{PATH}", emitted
    server.shutdown()
    server.server_close()


def _post(url, body, headers):
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


BODY = json.dumps({
    "entity": "model_version_alias", "action": "created",
    "data": {"name": "credit", "alias": "challenger", "version": "2"},
}).encode()


def _signed(secret, body=BODY, ts=None):
    ts = str(int(time.time()) if ts is None else ts)
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": "abc",
            "X-MLflow-Timestamp": ts, "X-MLflow-Signature": sign(secret, "abc", ts, body)}


def test_a_signed_alias_move_is_emitted_as_a_candidate(receiver):
    url, emitted = receiver
    assert _post(url, BODY, _signed(SECRET)) == (200, {"emitted": True})
    assert emitted == [("credit", "challenger", "2", "abc")]


def test_forged_and_replayed_webhooks_are_refused_and_logged(receiver, caplog):
    url, emitted = receiver
    with caplog.at_level(logging.WARNING, logger="governance.mlflow_webhook"):
        assert _post(url, BODY, _signed("guessed"))[0] == 401
        assert _post(url, BODY, {"Content-Type": "application/json"})[0] == 401
        stale = _signed(SECRET, ts=int(time.time()) - 3_600)
        assert _post(url, BODY, stale)[0] == 401
    assert emitted == []
    refusals = [r.getMessage() for r in caplog.records if "refused a webhook" in r.getMessage()]
    assert len(refusals) == 3
    assert "signature mismatch" in refusals[0] and "missing signature" in refusals[1]


def test_the_receiver_refuses_to_start_without_a_secret():
    with pytest.raises(ValueError, match="secret is empty"):
        make_server("127.0.0.1", 0, "")
