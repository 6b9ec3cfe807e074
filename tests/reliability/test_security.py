"""Security: tampered models are refused, skops builds only trusted types, registry names stay
inside the registry, hostile input through `govern` is data and never SQL, credentials never
reach output, Prefect or the ledger, and a purge leaves nothing that identifies the subject."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.exceptions import ArtifactHashMismatch, InvalidName, UntrustedArtifact
from governance.registry.model_registry import ModelRegistry, load_trusted
from tests.reliability.conftest import CHUNK_ROWS, MODEL, NIGHT, NIGHT2, copy_home, run_govern
from tests.reliability.ledger import assert_same_ledger, column, ledger_rows, scalar, text_values

HOSTILE = [
    "x' OR '1'='1",
    "'; DROP TABLE decisions; --",
    '" OR ""="',
    "1; SELECT pg_sleep(30); --",
    "%",
    "_%",
    "S1000%",
    "\\",
    "$(id) `id`",
    "Ünïcødé-漢字-🙂",
    "a" * 500,
]


# -- artifacts ---------------------------------------------------------------------------------
def test_a_valid_artifact_of_another_version_is_refused(small_home, tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(small_home / "registry", root)
    shutil.copyfile(root / MODEL / "v2" / "model.skops", root / MODEL / "v1" / "model.skops")
    with pytest.raises(ArtifactHashMismatch, match="refusing to load"):
        ModelRegistry(root).load(MODEL, "v1")


def test_a_model_swapped_with_its_manifest_is_refused_by_the_ledger(
    nightly, small_home, db_url, tmp_path
):
    """An attacker who replaces the artifact and rewrites its hash in the manifest passes the
    registry's check, but not the ledger's: it remembers which bytes v1 was."""
    home = copy_home(small_home, tmp_path / "home")
    nightly(NIGHT, home, db_url)
    before = ledger_rows(db_url)
    v1, v2 = home / "registry" / MODEL / "v1", home / "registry" / MODEL / "v2"
    shutil.copyfile(v2 / "model.skops", v1 / "model.skops")
    manifest = json.loads((v1 / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = json.loads((v2 / "manifest.json").read_text())["artifact"][
        "sha256"
    ]
    (v1 / "manifest.json").write_text(json.dumps(manifest))
    ModelRegistry(home / "registry").load(MODEL, "v1")  # the registry alone is fooled

    with pytest.raises(ArtifactHashMismatch, match="the ledger recorded"):
        nightly(NIGHT, home, db_url)
    assert scalar(db_url, "SELECT status FROM runs") == "failed"
    assert "ArtifactHashMismatch" in scalar(db_url, "SELECT error FROM runs")
    after = ledger_rows(db_url)
    assert_same_ledger(
        {k: v for k, v in after.items() if k != "runs"},
        {k: v for k, v in before.items() if k != "runs"},
    )


class Tripwire:
    """Leaves a file behind if it is ever built: proof that skops constructed it."""

    def __init__(self) -> None:
        self.armed = True

    def __setstate__(self, state: dict) -> None:
        Path(os.environ["TRIPWIRE_FILE"]).write_text("built")
        self.__dict__.update(state)


def test_skops_never_builds_an_untrusted_type(tmp_path, monkeypatch):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    marker = tmp_path / "tripwire"
    monkeypatch.setenv("TRIPWIRE_FILE", str(marker))
    X, y = np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1])
    model = Pipeline([("clf", LogisticRegression().fit(X, y))])
    model.tripwire = Tripwire()
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert any(t.endswith("Tripwire") for t in untrusted)

    with pytest.raises(UntrustedArtifact, match="Tripwire"):
        load_trusted(path)
    assert not marker.exists()
    sio.load(path, trusted=untrusted)  # the wire works: trusting the type builds it
    assert marker.exists()


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(name=st.text(max_size=70), version=st.text(max_size=70))
def test_no_registry_name_reaches_outside_the_registry(tmp_path_factory, name, version):
    root = tmp_path_factory.mktemp("reg")
    reg = ModelRegistry(root)
    try:
        path = reg.path(name, version)
    except InvalidName as exc:
        assert "\n" not in str(exc)
        return
    assert path.resolve().is_relative_to(root.resolve())
    assert path.resolve().parent.parent == root.resolve()


def test_a_link_out_of_the_registry_is_refused(small_home, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(small_home / "registry" / MODEL, outside)
    root = tmp_path / "registry"
    root.mkdir()
    (root / "evil").symlink_to(outside, target_is_directory=True)
    reg = ModelRegistry(root)
    with pytest.raises(InvalidName, match="escapes the registry"):
        reg.load("evil", "v1")
    (root / "credit").mkdir()
    (root / "credit" / "v1").symlink_to(outside / "v1", target_is_directory=True)
    with pytest.raises(InvalidName, match="escapes the registry"):
        reg.manifest("credit", "v1")


# -- the command line with hostile input -------------------------------------------------------
@pytest.fixture
def cli_env(monkeypatch, prefect_backend, rel_cluster):
    monkeypatch.setenv("PREFECT_API_URL", prefect_backend)
    for var in (
        "GOVERNANCE_HOME",
        "GOVERNANCE_DB_URL",
        "GOVERNANCE_LOG_URL",
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
    ):
        monkeypatch.setenv(var, "unset")
        monkeypatch.delenv(var)
    return ["--dask-address", rel_cluster.scheduler_address]


def test_hostile_input_through_the_cli_is_data_not_sql(
    nightly, small_home, db_url, tmp_path, capfd, cli_env
):
    home = copy_home(small_home, tmp_path / "home")
    nightly(NIGHT, home, db_url)
    before = ledger_rows(db_url)
    where = ["--home", str(home), "--db", db_url]
    for text in HOSTILE:
        # Matched as data: nobody has that id (exit 1, not found), and no run kind is called
        # that (exit 2, the kinds named); one line on stderr, nothing on stdout.
        for args, expected in (
            (["history", "--subject", text, "--json"], 1),
            (["recourse", "--subject", text, "--json"], 1),
            (["runs", "--kind", text, "--json"], 2),
        ):
            code, out, err = run_govern([*args, *where], capfd)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == expected and len(lines) == 1 and out == "", (args, err)
            assert "Traceback" not in out + err
        for args in (
            ["models", "show", text, "v1", "--home", str(home)],
            ["models", "show", MODEL, text, "--home", str(home)],
            ["nightly", "--date", NIGHT.isoformat(), "--model", text, *where, *cli_env],
        ):
            code, out, err = run_govern(args, capfd)
            lines = [line for line in err.splitlines() if line.strip()]
            assert code == 2 and len(lines) == 1 and "is not allowed" in lines[0], (args, err)
            assert "Traceback" not in out + err
    assert_same_ledger(ledger_rows(db_url), before)
    assert scalar(db_url, "SELECT COUNT(*) FROM decisions") > 0


def test_markup_in_a_subject_id_is_printed_as_text(small_home, tmp_path, capfd, cli_env):
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    from governance.store import init_store

    init_store(url).dispose()  # an empty ledger: read-only commands never create one
    code, out, err = run_govern(
        ["history", "--subject", "[/] [bold]x", "--home", str(small_home), "--db", url], capfd
    )
    # not found (exit 1), and the markup is printed as the text it is, not interpreted
    assert code == 1 and "[/] [bold]x" in err, err


# -- credentials -------------------------------------------------------------------------------
def _flow_run_parameters(since) -> list[dict]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterStartTime

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(start_time=FlowRunFilterStartTime(after_=since)),
            limit=200,
        )
    return [r.parameters for r in runs]


class _Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=0)
        self.text: list[str] = []

    def emit(self, record) -> None:  # noqa: ANN001 - logging.LogRecord
        self.text.append(self.format(record))


def test_credentials_never_reach_output_prefect_or_the_ledger(
    small_home, backend, make_db, tmp_path, capfd, cli_env
):
    from datetime import UTC, datetime

    home = copy_home(small_home, tmp_path / "home")
    pg = make_db("postgresql")
    password = sa.make_url(pg).password
    secrets = [f":{password}@", sa.make_url(pg).render_as_string(hide_password=False)]
    args = ["nightly", "--date", NIGHT.isoformat(), "--home", str(home)]
    args += ["--chunk-rows", str(4 * CHUNK_ROWS), *cli_env]
    if backend == "postgresql":
        ledger = pg
        args += ["--db", pg]
    else:  # the ledger is SQLite; the decision log is a PostgreSQL table behind a password
        ledger = f"sqlite:///{home / 'governance.db'}"
        frame = pd.read_parquet(next((home / "decision-logs").glob(f"*{NIGHT}*/*.parquet")))
        engine = sa.create_engine(pg)
        frame.to_sql("decision_log", engine, index=False)
        engine.dispose()
        os.environ["GOVERNANCE_LOG_URL"] = pg  # restored by cli_env
        args += ["--log", "table:decision_log"]
    handler = _Everything()
    loggers = [logging.getLogger(), logging.getLogger("prefect")]
    for lg in loggers:
        lg.addHandler(handler)
    since = datetime.now(UTC)
    try:
        code, out, err = run_govern(args, capfd)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    assert code == 0, err
    assert scalar(ledger, "SELECT COUNT(*) FROM decisions") > 0
    params = json.dumps(_flow_run_parameters(since), default=str)
    assert '"night"' in params  # the run reached Prefect
    places = {
        "output": out + err,
        "logs": "\n".join(handler.text),
        "prefect parameters": params,
        "ledger": "\n".join(text_values(ledger)),
    }
    for place, text in places.items():
        for secret in secrets:
            assert secret not in text, f"the database password appears in the {place}"
    recorded = scalar(ledger, "SELECT parameters FROM runs")
    recorded = json.loads(recorded) if isinstance(recorded, str) else recorded
    assert ":***@" in recorded["db" if backend == "postgresql" else "log"]  # masked, not lost


def test_a_failed_login_does_not_echo_the_password(small_home, capfd, cli_env):
    url = "postgresql+psycopg://governance:N0t-the-Passw0rd@127.0.0.1:5432/postgres"
    code, out, err = run_govern(["runs", "--db", url, "--home", str(small_home)], capfd)
    assert code == 2 and "N0t-the-Passw0rd" not in out + err and "Traceback" not in err


# -- the purge -----------------------------------------------------------------------------------
def test_forget_leaves_nothing_that_identifies_the_subject(
    small_home, backend, make_db, tmp_path, capfd, cli_env, nightly
):
    from datetime import UTC, datetime

    from governance.deletion.scan import scan_for_subject, subject_needles

    home = copy_home(small_home, tmp_path / "home")
    shutil.rmtree(home / "decision-logs" / f"decision_date={NIGHT2}")
    subject = HOSTILE[0]  # a hostile id, purged like any other
    log = next((home / "decision-logs").glob(f"*{NIGHT}*/*.parquet"))
    frame = pd.read_parquet(log)
    frame.loc[7, "subject_id"] = subject
    frame.to_parquet(log, index=False)
    # what only this subject holds: values anyone else has, in the night or the training
    # data of either version, would be found after a correct purge too
    reg = ModelRegistry(home / "registry")
    everyone = pd.concat(
        [frame]
        + [
            reg.training_frame(MODEL, v)[
                frame.columns.intersection(reg.training_frame(MODEL, v).columns)
            ]
            for v in ("v1", "v2")
        ],
        ignore_index=True,
    )
    needles = subject_needles(
        everyone, [subject], columns=reg.manifest(MODEL, "v1").schema.names, min_chars=6
    )
    assert len(needles) >= 3  # the id and at least two values only this subject holds
    url = make_db(backend) if backend == "postgresql" else f"sqlite:///{home / 'governance.db'}"
    nightly(NIGHT, home, url)
    assert column(url, "SELECT decision_id FROM decisions WHERE subject_id = :s", s=subject)

    since = datetime.now(UTC)
    code, out, err = run_govern(
        ["forget", "--subject", subject, "--home", str(home), "--db", url, *cli_env], capfd
    )
    assert code == 0, err
    assert scalar(url, "SELECT COUNT(*) FROM tombstones") == 1, out + err
    assert scalar(url, "SELECT COUNT(*) FROM deletion_requests WHERE subject_id IS NOT NULL") == 0
    found = scan_for_subject([home], needles)  # logs, training files, registry, SQLite ledger
    assert not found, found
    stored = "\n".join(text_values(url))
    forms = [n if isinstance(n, str) else repr(n) for n in needles]
    assert not [f for f in forms if f in stored]
    assert subject not in json.dumps(_flow_run_parameters(since), default=str)
    assert scalar(url, "SELECT COUNT(*) FROM decisions") > 0  # the others stay
