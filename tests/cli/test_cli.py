"""The `govern` command line, run as a user runs it: a subprocess per command.

Bad input ends with one line on stderr, the exit code of the README's table and the ledger as it
was; each such command's seconds are measured and printed (not asserted: the machine's load
decides them). Every command that prints data has --json, and its stdout parses.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from tests.conftest import DEMO_NIGHT

GOVERN = str(Path(sys.executable).with_name("govern"))
COMMANDS = [
    [],
    ["demo"],
    ["nightly"],
    ["history"],
    ["runs"],
    ["deploy"],
    ["models"],
    ["models", "list"],
    ["models", "show"],
    ["models", "register"],
    ["models", "import"],
    ["log", "check"],
    ["action-set", "draft"],
    ["action-set", "check"],
    ["explainers"],
    ["explainers", "compare"],
    ["explainers", "show"],
    ["explainers", "quality"],
]

README = Path(__file__).resolve().parents[2] / "README.md"
TIMINGS: list[tuple[str, float, float]] = []


def govern(
    *args: str,
    home: Path | None = None,
    server: str | None = None,
    timeout: int = 600,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run `govern`; flows start their own Prefect server unless given one's URL."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["COLUMNS"] = "80"
    if server:
        env["PREFECT_API_URL"] = server
    env.update(extra_env or {})
    cmd = [GOVERN, *args] + (["--home", str(home)] if home else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def commands() -> dict[str, object]:
    """Every `govern` command by its path ("models list"), as click objects, in-process."""
    import typer

    from govern_cli.main import app, polish_help

    found: dict[str, object] = {}

    def walk(cmd: object, path: str) -> None:
        found[path] = cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    root = typer.main.get_command(app)
    polish_help(root)
    walk(root, "")
    return found


def option_names(cmd: object) -> set[str]:
    return {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}


@pytest.fixture(scope="module")
def ledger_home(demo_home, tmp_path_factory):
    """The small demo after one real `govern nightly` run (own Prefect server, LocalCluster,
    logging to the API on, as a user's default is), at 80 columns; later flow commands share
    the session's server to save its start."""
    home = tmp_path_factory.mktemp("cli") / "home"
    shutil.copytree(demo_home, home)
    result = govern(
        "nightly",
        "--date",
        DEMO_NIGHT.isoformat(),
        "--workers",
        "2",
        home=home,
        extra_env={"PREFECT_LOGGING_TO_API_ENABLED": "true"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nightly governance runs" in result.stdout
    # the temporary server stops after the logs reached it: nothing on stderr at all
    assert result.stderr == "", result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 80, result.stdout
    return home


def _denied_subject(home: Path) -> str:
    engine = sa.create_engine(f"sqlite:///{home / 'governance.db'}")
    with engine.connect() as conn:
        subject = conn.execute(
            sa.text(
                "SELECT d.subject_id FROM decisions d JOIN issued_recourse i "
                "ON i.decision_id = d.decision_id ORDER BY d.decision_id"
            )
        ).scalar()
    engine.dispose()
    return subject


def ledger_dump(path: Path) -> str | None:
    """Every row of a SQLite ledger, exactly; None when there is no file."""
    if not path.exists():
        return None
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump())
    finally:
        conn.close()


# -- help ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", ["", "nightly", "runs", "deploy", "models", "models register"], ids=str
)
def test_help_reads_whole_at_80_columns(command):
    result = govern(*command.split(), "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage: govern" in result.stdout
    assert "<bool>" not in result.stdout  # flags take no value; none is shown
    assert max(len(line) for line in result.stdout.splitlines()) <= 80
    # In a panel, a description wraps only where the next word would not fit: a short line
    # followed by more of the same description is a hard line break inside a sentence.
    rows = [line[1:-1] for line in result.stdout.splitlines() if line.startswith("│ ")]
    for above, below in zip(rows, rows[1:], strict=False):
        lead = len(below) - len(below.lstrip())
        if below.strip() and lead > 8 and len(above) == len(below):  # a continuation line
            word = below.split()[0]
            if word.startswith("["):  # "[default: ...]", "[required]": typer's own new line
                continue
            room = len(above) - len(above.rstrip())  # blank end of the line, with its pad
            assert len(word) + 2 > room, f"broken mid-line:\n{above}\n{below}"


def test_every_command_has_help_in_whole_paragraphs_and_promises_nothing_missing():
    for path, cmd in commands().items():
        assert cmd.help and cmd.help.strip(), path
        for paragraph in cmd.help.split("\n\n"):
            assert "\n" not in paragraph, (path, paragraph)  # reflowed: the terminal wraps
    models = govern("models", "--help").stdout
    assert "deploy versions" not in models  # the models group deploys nothing itself
    assert set(commands()) >= {"models list", "models show", "models register"}


def test_estimator_help_names_every_estimator():
    from govern_cli.models import ESTIMATOR_NAMES
    from governance.registry.training import ESTIMATORS

    assert list(ESTIMATOR_NAMES) == list(ESTIMATORS)
    text = " ".join(govern("models", "register", "--help").stdout.split())
    text = text.replace("│", "").replace(" ", "")
    for name in ESTIMATORS:
        assert name.replace("_", "") in text.replace("_", ""), name


def test_the_readme_lists_the_exit_codes_every_command_uses():
    from govern_cli.output import EXIT_CODES

    text = README.read_text()
    table = dict(re.findall(r"^\| `(\d+)` \| ([^|]+) \|$", text, flags=re.M))
    assert {int(k): v.strip() for k, v in table.items()} == EXIT_CODES


# -- bad input: one line, the table's exit code, the ledger untouched --------------------------
def _night_file(home: Path) -> Path:
    return next((home / "decision-logs").glob(f"decision_date={DEMO_NIGHT}/*.parquet"))


def _log(tmp: Path, home: Path, name: str, change) -> str:
    """A copy of the demo night, damaged by ``change``, as a log folder."""
    folder = tmp / f"logs-{name}" / f"decision_date={DEMO_NIGHT}"
    folder.mkdir(parents=True)
    change(pd.read_parquet(_night_file(home))).to_parquet(folder / "part-0.parquet")
    return str(folder.parent)


def _bad_inputs(tmp: Path, home: Path) -> list[tuple[str, list[str], int, str]]:
    night = ["nightly", "--date", DEMO_NIGHT.isoformat()]
    csv = tmp / "training.csv"
    csv.write_text("a,b,label\n1,2,0\n3,4,1\n")
    naive = _log(
        tmp, home, "naive", lambda f: f.assign(decided_at=f.decided_at.dt.tz_localize(None))
    )
    lacking = _log(tmp, home, "lacking", lambda f: f.drop(columns=["annual_income"]))
    percent = _log(tmp, home, "percent", lambda f: f.assign(score=f.score * 100))
    register = ["models", "register", "m", "v1", "--label", "label", "--estimator", "mlp"]
    return [
        ("naive timestamps", [*night, "--log", naive], 2, "has no time zone"),
        ("a missing column", [*night, "--log", lacking], 2, "lacks required column(s): annual_"),
        ("scores in percent", [*night, "--log", percent], 2, "of 'score' values lie outside"),
        (
            "a wrong password",
            [*night, "--db", "postgresql://governance:wrong@127.0.0.1:5432/postgres"],
            2,
            "cannot reach the store at postgresql+psycopg://governance:***@",
        ),
        ("an unknown model", [*night, "--model", "nope"], 1, "'nope' is not in registry"),
        ("a bad date", ["nightly", "--date", "2026-13-01"], 2, "expected YYYY-MM-DD"),
        (
            "a mistyped ledger",
            ["runs", "--db", f"sqlite:///{tmp / 'typo.db'}"],
            1,
            f"no ledger at {tmp / 'typo.db'}",
        ),
        (
            "a ledger in a missing folder, read",
            ["runs", "--db", f"sqlite:///{tmp / 'nope' / 'x.db'}"],
            1,
            "no ledger at",
        ),
        (
            "a ledger in a missing folder, written",
            [*night, "--db", f"sqlite:///{tmp / 'nope' / 'x.db'}"],
            2,
            f"folder {tmp / 'nope'} does not exist",
        ),
        ("a malformed URL", ["runs", "--db", "ledger.db"], 2, "is not a database URL"),
        ("a URL without driver", ["runs", "--db", "mysql://u@h/d"], 2, "no database driver"),
        (
            "CSV given as Parquet",
            [*register, "--data", str(csv)],
            2,
            f"training data {csv} is not a readable Parquet file",
        ),
        ("a threshold off the scale", [*register, "--data", str(csv), "--threshold", "1.5"], 2,
         "--threshold 1.5 must lie strictly between 0 and 1"),
        ("an unknown run kind", ["runs", "--kind", "foo"], 2,
         "expected one of deletion, fragility, nightly, redeploy"),
        ("an unknown subject's recourse", ["recourse", "--subject", "NOPE"], 1,
         "no decisions recorded for subject 'NOPE'"),
        ("an unknown subject's history", ["history", "--subject", "NOPE"], 1,
         "no decisions recorded for subject 'NOPE'"),
        ("an unknown version", ["models", "show", "credit-default", "v9"], 1,
         "'v9' not in registry"),
        ("a hostile model name", ["models", "show", "../../etc", "v1"], 2, "is not allowed"),
        ("a registry that is not there", ["models", "list", "--home", str(tmp / "nowhere")], 1,
         "no model registry at"),
    ]


def test_bad_input_is_one_line_the_tables_exit_code_and_no_change(ledger_home, tmp_path, capsys):
    ledger = ledger_home / "governance.db"
    for what, args, code, text in _bad_inputs(tmp_path, ledger_home):
        before = ledger_dump(ledger)
        home = None if "--home" in args else ledger_home
        cpu0, t0 = _children_cpu(), time.perf_counter()
        result = govern(*args, home=home, timeout=120)
        TIMINGS.append((what, time.perf_counter() - t0, _children_cpu() - cpu0))
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == code, (what, result.stdout, result.stderr)
        assert len(lines) == 1, (what, result.stderr)
        assert text in lines[0], (what, lines[0])
        assert "Traceback" not in result.stdout + result.stderr, what
        assert "wrong" not in lines[0], what  # passwords never shown
        assert ledger_dump(ledger) == before, what
    assert not (tmp_path / "typo.db").exists() and not (tmp_path / "nope").exists()
    with capsys.disabled():
        print("\nseconds until the one-line refusal (a subprocess, Python's start included):")
        print("   wall    cpu  input")
        for what, seconds, cpu in TIMINGS:
            print(f"  {seconds:5.1f}  {cpu:5.1f}  {what}")


def _children_cpu() -> float:
    """CPU seconds (user and system) of this process's finished children: unlike wall time,
    it does not grow with the machine's load."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_postgres_urls_are_understood(pg_url):
    from tests.conftest import reset_pg

    reset_pg(pg_url)
    plain = sa.make_url(pg_url).set(drivername="postgres").render_as_string(hide_password=False)
    assert plain.startswith("postgres://")
    missing = govern("runs", "--db", plain)  # a database without a ledger is not one to read
    assert missing.returncode == 1 and "holds no ledger" in missing.stderr, missing.stderr
    from governance.store import init_store

    init_store(pg_url).dispose()
    found = govern("runs", "--db", plain, "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout) == []


# -- output a reviewer can read --------------------------------------------------------------
def test_history_and_recourse_speak_the_codebook_and_the_cost_unit(ledger_home):
    subject = _denied_subject(ledger_home)
    table = govern("history", "--subject", subject, home=ledger_home)
    assert table.returncode == 0 and subject in table.stdout and "denied" in table.stdout
    assert "reason (feature)" in table.stdout
    data = json.loads(govern("history", "--subject", subject, "--json", home=ledger_home).stdout)
    decision = data["decisions"][0]
    assert decision["decision"] == "denied" and decision["model_version"] == "v1"
    assert 1 <= len(decision["reasons"]) <= 4
    assert [r["rank"] for r in decision["reasons"]] == list(range(1, len(decision["reasons"]) + 1))
    from governance.data.synthetic import SYNTHETIC_CODEBOOK

    for r in decision["reasons"]:
        label = SYNTHETIC_CODEBOOK.feature(r["feature"])
        assert r["feature_label"] == label and label in table.stdout
    recourse = govern("recourse", "--subject", subject, home=ledger_home)
    assert recourse.returncode == 0, recourse.stderr
    assert "percentile-shift units" in recourse.stdout and "1.0 = one feature" in recourse.stdout
    issued = json.loads(govern("recourse", "--subject", subject, "--json", home=ledger_home).stdout)
    rec = issued["decisions"][0]["recourse"]
    assert rec["cost_kind"] == "percentile_shift" and "percentile-shift" in rec["cost_unit"]
    assert all("feature_label" in ch for ch in rec["changes"])


def test_tables_fit_80_columns_and_runs_shows_the_essentials(ledger_home):
    for args in (["runs"], ["models", "list"], ["deletions"]):
        result = govern(*args, home=ledger_home)
        assert result.returncode == 0, (args, result.stderr)
        lines = result.stdout.splitlines()
        assert max(len(line) for line in lines) <= 80, (args, result.stdout)
        assert "…" not in result.stdout, (args, result.stdout)  # no value cut short
    runs = govern("runs", home=ledger_home).stdout
    header = next(line for line in runs.splitlines() if line.lstrip().startswith("id"))
    assert header.split() == [
        "id", "kind", "night", "model", "status", "decided", "denied", "quar.", "wall", "s"
    ]
    wide = govern("runs", "--wide", home=ledger_home).stdout
    assert max(len(line) for line in wide.splitlines()) <= 80
    assert "reasons_issued" in wide and "reasons_issued" not in runs
    listed = govern("models", "list", home=ledger_home).stdout
    assert re.search(r"credit-default v1\s+yes", listed) and re.search(r"v2\s+no", listed)


# -- JSON for scripts ------------------------------------------------------------------------
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")
COUNTS = {
    "decisions", "denied", "quarantined", "pulled", "valid", "chunks", "attempts", "run_id",
    "recourses", "recourses_checked", "invalidated", "reasons_issued", "fixed",
}


def check_json(stdout: str) -> object:
    """Parse ``stdout`` as one JSON document; times carry their zone; counts are integers."""
    data = json.loads(stdout)

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and ISO_TIME.match(value):
            assert re.search(r"(\+00:00|Z)$", value), (key, value)
        elif key in COUNTS and value is not None:
            assert isinstance(value, int) and not isinstance(value, bool), (key, value)

    walk(data)
    return data


JSON_COMMANDS = {
    "demo", "nightly", "history", "recourse", "runs", "deploy", "redeploy-check", "forget",
    "deletions", "fragility", "models list", "models show", "models register", "models codebook",
    "models sync", "models aliases", "models webhook",
    "models import", "log check", "action-set draft", "action-set check", "explainers compare",
    "explainers show", "explainers quality", "notices", "reasons list",
}
# Commands that print no data: they write a document (report, notice), record a reviewed
# statement (reasons set) or serve pages (serve), and say where in one line.
NO_DATA_COMMANDS = {"report", "notice", "reasons set", "serve"}


def test_every_command_that_prints_data_has_json():
    with_json = {p for p, c in commands().items() if "--json" in option_names(c)}
    groups = {p for p, c in commands().items() if hasattr(c, "commands")}
    assert with_json == JSON_COMMANDS, with_json ^ JSON_COMMANDS
    # every other command is a group, or prints no data
    assert set(commands()) - with_json == groups | NO_DATA_COMMANDS


def test_json_of_the_reading_commands_and_the_codebook(ledger_home, tmp_path):
    subject = _denied_subject(ledger_home)
    runs = check_json(govern("runs", "--json", home=ledger_home).stdout)
    assert runs[0]["kind"] == "nightly" and runs[0]["status"] == "succeeded"
    assert isinstance(runs[0]["decisions"], int)
    for args in (
        ["history", "--subject", subject],
        ["recourse", "--subject", subject],
        ["deletions"],
        ["models", "list"],
        ["models", "show", "credit-default"],
    ):
        result = govern(*args, "--json", home=ledger_home)
        assert result.returncode == 0 and result.stderr == "", (args, result.stderr)
        check_json(result.stdout)
    book = tmp_path / "book.csv"
    book.write_text("column,code,meaning\nhome_ownership,,Home\nhome_ownership,RENT,tenant\n")
    # on a copy: the shared demo home keeps the demo's own codebook for the other tests
    home = tmp_path / "home"
    shutil.copytree(ledger_home, home)
    attached = govern("models", "codebook", "credit-default", "v2", str(book), "--json",
                      home=home)
    assert attached.returncode == 0, attached.stderr
    assert check_json(attached.stdout)["values"] == {"home_ownership": {"RENT": "tenant"}}
    shown = check_json(govern("models", "show", "credit-default", "v2", home=home).stdout)
    assert shown["codebook"]["features"] == {"home_ownership": "Home"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"features": {"no_such_feature": "X"}}))
    refused = govern("models", "codebook", "credit-default", "v2", str(bad), home=home)
    assert refused.returncode == 2 and "does not have: no_such_feature" in refused.stderr


def test_json_of_register(ledger_home, tmp_path):
    frame = pd.read_parquet(_night_file(ledger_home)).iloc[:300]
    data = tmp_path / "train.parquet"
    frame.assign(label=(frame["score"] > 0.5).astype(int))[
        ["annual_income", "debt_to_income", "home_ownership", "label"]
    ].to_parquet(data)
    result = govern(
        "models", "register", "tiny", "v1", "--data", str(data), "--label", "label",
        "--estimator", "logistic_regression", "--json", home=tmp_path / "home",
    )
    assert result.returncode == 0, result.stderr
    manifest = check_json(result.stdout)
    assert manifest["name"] == "tiny" and manifest["metrics"]["test_rows"] == 60


def test_redeploy_check_exit_code_follows_the_gate(ledger_home, prefect_server):
    common = [
        "redeploy-check",
        "credit-default",
        "v2",
        "--variants",
        "0",
        "--recent-days",
        "0",  # the gate reads re-validation alone; reason comparisons are the flow tests' part
        "--window-months",
        "1000",
        "--workers",
        "2",
    ]
    strict = govern(*common, "--gate", "0", home=ledger_home, server=prefect_server)
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        invalidated = conn.execute(sa.text("SELECT invalidated FROM deployment_checks")).scalar()
    engine.dispose()
    assert strict.returncode == (3 if invalidated else 0), strict.stdout + strict.stderr
    if invalidated:
        assert "gate failed" in strict.stderr and "Traceback" not in strict.stderr
        # features and segments in the codebook's words, not the log's column names
        assert "Invalidation by feature" in strict.stdout
        for column in ("home_ownership", "revolving_utilization", "annual_income"):
            assert column not in strict.stdout, strict.stdout
    lenient = govern(*common, "--gate", "1", "--json", home=ledger_home, server=prefect_server)
    assert lenient.returncode == 0, lenient.stderr
    assert check_json(lenient.stdout)["counts"]["passed"] is True
    # a check by hand deploys nothing, so nobody is listed for re-contact
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM v_recontact")).scalar() == 0
        states = conn.execute(
            sa.text("SELECT state, passed FROM deployment_events WHERE version = 'v2' ORDER BY id")
        ).all()
    engine.dispose()
    assert states == [("checked", (not invalidated)), ("checked", True)]


def _ledger(home: Path, sql: str):
    engine = sa.create_engine(f"sqlite:///{home / 'governance.db'}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(sql)).all()
    engine.dispose()
    return rows


def test_deploy_runs_the_gate_first_and_force_needs_a_reason(ledger_home, tmp_path):
    """After the demo, `govern deploy credit-default v2` fails the gate: exit 3, v1 stays
    deployed, nobody is listed for re-contact and no deployment is recorded; `--force
    --reason` then deploys it over the recorded check, saying who and why."""
    home = tmp_path / "home"
    shutil.copytree(ledger_home, home)
    before = _ledger(home, "SELECT COALESCE(MAX(id), 0) FROM deployment_events")[0][0]
    gated = govern("deploy", "credit-default", "v2", "--workers", "2", home=home)
    assert gated.returncode == 3, gated.stdout + gated.stderr
    assert "gate failed" in gated.stderr and "not deployed" in gated.stderr
    assert "Traceback" not in gated.stderr
    listed = json.loads(govern("models", "list", "--json", home=home).stdout)
    assert {r["version"]: r["deployed"] for r in listed} == {"v1": True, "v2": False}
    assert {r["version"]: r["state"] for r in listed}["v2"] == "check failed"
    assert _ledger(home, "SELECT COUNT(*) FROM v_recontact") == [(0,)]
    invalid = _ledger(home, "SELECT COUNT(*) FROM recourse_validity WHERE NOT valid")[0][0]
    assert invalid > 0  # the check found broken promises; the view keeps them out

    no_reason = govern("deploy", "credit-default", "v2", "--force", home=home)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    forced = govern(
        "deploy", "credit-default", "v2", "--force", "--reason", "accepted by the model-risk "
        "committee", home=home, timeout=120,
    )
    assert forced.returncode == 0, forced.stdout + forced.stderr
    events = _ledger(
        home,
        "SELECT version, state, passed, forced, reason, check_run_id, previous_version "
        f"FROM deployment_events WHERE id > {before} ORDER BY id",
    )
    assert [(e[0], e[1]) for e in events] == [
        ("v2", "candidate"), ("v2", "checked"), ("v2", "candidate"), ("v2", "deployed"),
    ]
    check, deployed = events[1], events[-1]
    assert bool(check[2]) is False
    assert bool(deployed[3]) and deployed[4] == "accepted by the model-risk committee"
    assert deployed[5] == check[5] and deployed[6] == "v1"
    assert _ledger(home, "SELECT COUNT(*) FROM v_recontact") == [(invalid,)]
    listed = json.loads(govern("models", "list", "--json", home=home).stdout)
    assert {r["version"]: r["deployed"] for r in listed} == {"v1": False, "v2": True}


def test_forget_purges_and_history_shows_the_tombstone(ledger_home, prefect_server):
    engine = sa.create_engine(f"sqlite:///{ledger_home / 'governance.db'}")
    with engine.connect() as conn:
        subject = conn.execute(
            sa.text("SELECT subject_id FROM decisions WHERE subject_id < 'S1' ORDER BY subject_id")
        ).scalar()
    engine.dispose()
    result = govern(
        "forget",
        "--subject",
        subject,
        "--reason",
        "Art. 17 request",
        "--workers",
        "2",
        "--json",
        home=ledger_home,
        server=prefect_server,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deletion request" in result.stderr  # the message; stdout holds only JSON
    done = check_json(result.stdout)
    assert done["summary"]["checks"][0]["candidate_version"]
    assert done["summary"]["counts"]["purged"]
    history = govern("history", "--subject", subject, "--json", home=ledger_home)
    data = check_json(history.stdout)
    assert data["decisions"] == [] and len(data["tombstones"]) == 1
    listed = check_json(govern("deletions", "--json", home=ledger_home).stdout)
    assert [r["status"] for r in listed] == ["purged"] and listed[0]["overdue"] is False
    table = govern("deletions", home=ledger_home).stdout
    assert max(len(line) for line in table.splitlines()) <= 80 and "…" not in table


def test_json_of_the_flow_commands(ledger_home, prefect_server):
    """nightly (a rerun), fragility and deploy print only JSON on stdout, and their messages on
    stderr."""
    rerun = govern("nightly", "--date", DEMO_NIGHT.isoformat(), "--workers", "1", "--json",
                   home=ledger_home, server=prefect_server)
    assert rerun.returncode == 0, rerun.stderr
    summary = check_json(rerun.stdout)
    assert summary["night"] == DEMO_NIGHT.isoformat() and summary["counts"]["decisions"] > 0
    fragile = govern("fragility", "--model", "credit-default", "--version", "v1", "--limit", "3",
                     "--k", "1", "--workers", "1", "--json", home=ledger_home,
                     server=prefect_server)
    assert fragile.returncode == 0, fragile.stderr
    screened = check_json(fragile.stdout)
    assert screened["counts"]["recourses"] == 3
    # the demo's boosting model is screened with shared deletion sets, and says what that proves
    assert screened["method"] == "screen"
    assert 1 <= screened["counts"]["deletion_sets_retrained"] <= 3 * 4
    assert "no tried set breaks the other" in screened["claim"]
    assert "does not prove they survive 1 deletions" in screened["claim"]
    deployed = govern("deploy", "credit-default", "v2", "--check", "--gate", "1", "--workers",
                      "1", "--json", home=ledger_home, server=prefect_server)
    assert deployed.returncode == 0, deployed.stderr
    assert check_json(deployed.stdout)["version"] == "v2"


def test_hostile_subject_ids_are_data_not_sql(ledger_home):
    hostile = "x' OR '1'='1'; DROP TABLE decisions; --"
    result = govern("history", "--subject", hostile, "--json", home=ledger_home)
    assert result.returncode == 1 and result.stdout == ""
    assert "no decisions recorded" in result.stderr
    assert _denied_subject(ledger_home)  # the table is still there


def test_unreachable_database_is_a_one_line_error(ledger_home):
    result = govern(
        "runs", "--db", "postgresql+psycopg://u:topsecret@127.0.0.1:1/x", home=ledger_home
    )
    assert result.returncode == 2
    assert "cannot reach the store" in result.stderr
    assert "topsecret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr
