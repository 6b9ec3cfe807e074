"""MLflow source helpers that need no server: URIs, masking, webhook signatures."""

from __future__ import annotations

import pytest

from governance.exceptions import ImportRefused
from governance.registry.mlflow_source import mask_uri, parse_model_uri, sign, verify_signature


def test_a_password_in_the_tracking_uri_is_masked():
    assert mask_uri("https://ana:s3cret@mlflow.internal:5000/x") == (
        "https://ana:***@mlflow.internal:5000/x"
    )
    assert mask_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"


def test_model_uris_name_an_alias_or_a_version():
    assert parse_model_uri("models:/credit@champion") == ("credit", "champion", None)
    assert parse_model_uri("models:/credit/3") == ("credit", None, "3")
    for bad in ("credit@champion", "models:/credit", "models:/credit/latest", "runs:/abc/model"):
        with pytest.raises(ImportRefused, match="not an MLflow model URI"):
            parse_model_uri(bad)


def _headers(secret, body, ts):
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": str(ts),
        "X-MLflow-Signature": sign(secret, "d-1", str(ts), body),
    }


def test_webhook_signatures_verify_the_raw_body_within_a_replay_window():
    body = b'{"entity": "model_version_alias", "data": {"name": "m", "alias": "a"}}'
    now = 1_796_519_028
    assert verify_signature(_headers("k", body, now), body, "k", now=now) == (True, "")
    assert verify_signature(_headers("wrong", body, now), body, "k", now=now) == (
        False, "signature mismatch")
    tampered = body.replace(b'"a"', b'"b"')
    assert not verify_signature(_headers("k", body, now), tampered, "k", now=now)[0]
    ok, why = verify_signature(_headers("k", body, now - 3_600), body, "k", now=now)
    assert not ok and "away from now" in why
    assert verify_signature({}, body, "k", now=now) == (False, "missing signature headers")


def test_the_signature_is_mlflows_hmac_of_id_timestamp_and_body():
    # MLflow's own recipe (mlflow/webhooks/delivery.py), written out independently
    import base64
    import hashlib
    import hmac

    body = b'{"x": 1}'
    mac = hmac.new(b"k", b'd.7.{"x": 1}', hashlib.sha256).digest()
    assert sign("k", "d", "7", body) == "v1," + base64.b64encode(mac).decode()
