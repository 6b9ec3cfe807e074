"""The review app in a real browser, over a ledger the real flows built from the demo with
hostile ids: `govern nightly`, `govern deploy` (the redeploy check), `govern reasons set`,
`govern notice` and `govern forget` run as commands, `govern serve` as a server, and Debian's
chromium reads the pages, the report and the notices. One server and one browser per module.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from governance.demo import DEMO_REVIEWER, DEMO_STATEMENTS
from governance.intake.decision_log import ParquetDecisionLog
from tests.conftest import DEMO_NIGHT
from tests.helpers import read_sql

GOVERN = str(Path(sys.executable).with_name("govern"))
ROWS = 150
# Hostile ids, stored verbatim: markup, SQL, Unicode (with a right-to-left override), paths.
HOSTILE_SUBJECTS = [
    "<script>alert(1)</script>",
    "x'); DROP TABLE decisions;--",
    "Zoë 🙂 \u202eevil",
    "a/../b?c=d&e=1#f",
    '"><img src=x onerror=alert(2)>',
]
HOSTILE_DECISIONS = [
    "D-<img src=x onerror=alert(3)>",
    "D' OR '1'='1",
    "D-Zoë-🙂",
    "D/../%2e%2e",
    "D-<svg onload=alert(4)>",
]
TOKEN = "review-token-0123456789abcdef"


def govern(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`govern` in this process, as its console script runs it (no interpreter start, which
    costs seconds a command here); the environment it sets is put back afterwards."""
    from govern_cli.main import main

    saved, argv = dict(os.environ), sys.argv
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["govern", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        os.environ.clear()
        os.environ.update(saved)
    result = subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue())
    if check:
        assert code == 0, result.stdout + result.stderr
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(home: Path, host: str, env: dict) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [GOVERN, "serve", "--home", str(home), "--host", host, "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"govern serve exited: {proc.stdout.read()}")
        try:
            urllib.request.urlopen(url + "/favicon.ico", timeout=2)
            return proc, url
        except urllib.error.HTTPError:
            return proc, url  # it answers (401 when a token is wanted)
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("govern serve did not answer within 120 s")


def say(message: str) -> None:
    """Progress of the ledger's build, kept with the test artefacts (pytest captures stderr)."""
    from tests.cli.web.conftest import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with (ARTIFACTS / "browser-ledger.log").open("a") as fh:
        fh.write(f"{datetime.now(UTC):%H:%M:%S} {message}\n")


def first_issuable(db: str, home: Path) -> tuple[str, str]:
    """A denial whose notice the linter accepts, hostile ids first: (decision, subject)."""
    from govern_cli.web.notices import blocked_reasons, settings_or_none
    from governance.store import session_factory
    from governance.store.engine import make_engine

    settings, _ = settings_or_none(home)
    ids = read_sql(db, "SELECT decision_id, subject_id FROM decisions WHERE decision = 'denied'")
    rows = sorted(ids.itertuples(index=False), key=lambda r: r[0] not in HOSTILE_DECISIONS)
    engine = make_engine(db)
    try:
        with session_factory(engine)() as session:
            for decision_id, subject_id in rows:
                if not blocked_reasons(session, decision_id, settings):
                    return decision_id, subject_id
    finally:
        engine.dispose()
    raise AssertionError("no denial the linter accepts")


@pytest.fixture(scope="module")
def built(demo_home, prefect_server, tmp_path_factory):
    """The demo with a night of hostile ids, processed by the real flows, with reviewed
    statements, an issued notice, a redeploy check and one erased subject."""
    import shutil

    home = tmp_path_factory.mktemp("browser") / "home"
    shutil.copytree(demo_home, home)
    log = ParquetDecisionLog(home / "decision-logs")
    night = pd.read_parquet(log.files(DEMO_NIGHT)[0])
    night = night[
        night["annual_income"].notna()
        & (night["revolving_utilization"] <= 1.5)
        & (night["home_ownership"] != "CASTLE")
    ].drop_duplicates("decision_id", keep=False)
    night = night.iloc[:ROWS].reset_index(drop=True)
    denied = night.index[night["decision"] == "denied"][: len(HOSTILE_SUBJECTS)]
    night.loc[denied, "subject_id"] = HOSTILE_SUBJECTS[: len(denied)]
    night.loc[denied, "decision_id"] = HOSTILE_DECISIONS[: len(denied)]
    night["application_completed_at"] = night["decided_at"] - pd.Timedelta(days=2)
    log.write_night(DEMO_NIGHT, night)

    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    env.pop("GOVERNANCE_UI_TOKEN", None)
    h = ["--home", str(home)]
    statements = home / "statements.csv"
    with statements.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["feature", "direction", "statement"])
        for (feature, direction), text in DEMO_STATEMENTS.items():
            out.writerow([feature, direction, text])
        out.writerow(["loan_purpose", "any", "<b>Purpose</b> of the loan requested"])
    (home / "notice.yaml").write_text(
        "creditor: {name: Demo Lending Company, address: ['100 Example Avenue', "
        "'Springfield, ST 00000']}\n"
        "agency: {name: Consumer Financial Protection Bureau, address: ['1700 G Street NW', "
        "'Washington, DC 20552']}\n"
        "fcra: {agency: {name: Example Credit Bureau, address: ['PO Box 1'], "
        "phone: 1-800-555-0100}}\n"
    )
    db = f"sqlite:///{home / 'governance.db'}"
    from distributed import LocalCluster

    t0 = time.time()
    say("demo home and Prefect server ready")
    os.environ["PREFECT_API_URL"] = prefect_server
    try:
        with LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster:
            dask = ["--dask-address", cluster.scheduler_address]
            say(f"cluster up, {time.time() - t0:.0f} s")
            govern("nightly", "--date", DEMO_NIGHT.isoformat(), *dask, *h)
            say(f"nightly done, {time.time() - t0:.0f} s")
            govern(
                "redeploy-check",
                "credit-default",
                "v2",
                "--gate",
                "1.0",
                "--variants",
                "0",
                "--recent-days",
                "100000",
                "--window-months",
                "1000",
                *dask,
                *h,
            )
            say(f"redeploy check done, {time.time() - t0:.0f} s")
            for version in ("v1", "v2"):
                govern(
                    "reasons",
                    "set",
                    "--model",
                    "credit-default",
                    "--version",
                    version,
                    "--reviewer",
                    DEMO_REVIEWER,
                    "--file",
                    str(statements),
                    *h,
                )
            issued = first_issuable(db, home)
            govern("notice", "--decision", issued[0], *h)
            govern("notice", "--decision", issued[0], "--kind", "gdpr", *h)
            govern(
                "forget", "--subject", issued[1], "--reason", "<i>Art. 17</i> by email", *dask, *h
            )
        say(f"statements, notices and an erasure done, {time.time() - t0:.0f} s")
    finally:
        os.environ.pop("PREFECT_API_URL", None)
    runs = read_sql(db, "SELECT id, kind FROM runs ORDER BY id")
    return {
        "home": home,
        "db": db,
        "env": env,
        "notice": issued,
        "runs": dict(zip(runs["kind"], runs["id"], strict=False)),
        "hostile": [
            (s, d)
            for s, d in list(zip(HOSTILE_SUBJECTS, HOSTILE_DECISIONS, strict=True))[: len(denied)]
            if s != issued[1]
        ],
    }


@pytest.fixture(scope="module")
def server(built):
    proc, url = serve(built["home"], "127.0.0.1", built["env"])
    yield url
    proc.terminate()
    proc.wait(timeout=20)


class Watch:
    """Console errors, page errors, dialogs (an injected alert would open one) and requests
    to anywhere but the app."""

    def __init__(self, page: Page, origin: str) -> None:
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on(
            "request",
            lambda r: (
                None if r.url.startswith((origin, "data:", "file:")) else self.foreign.append(r.url)
            ),
        )

    def clean(self) -> bool:
        return not (self.errors or self.dialogs or self.foreign)


def all_pages(built) -> list[tuple[str, str]]:
    runs = built["runs"]
    out = [
        ("runs", "/runs"),
        ("run-nightly", f"/runs/{runs['nightly']}"),
        ("run-redeploy", f"/runs/{runs['redeploy']}"),
        ("run-deletion", f"/runs/{runs['deletion']}"),
        ("models", "/models"),
        ("model-v1", "/models/1"),
        ("model-v2", "/models/2"),
        ("deletions", "/deletions"),
        ("recontact", "/recontact"),
        ("notices", "/notices"),
        ("search", "/search?q=D"),
        ("subject-erased", "/subject?id=" + urllib.parse.quote(built["notice"][1], safe="")),
    ]
    for i, (subject, _) in enumerate(built["hostile"]):
        out.append((f"subject-hostile-{i}", "/subject?id=" + urllib.parse.quote(subject, safe="")))
    return out


def test_every_page_loads_without_console_errors(page: Page, server, built, screenshots):
    watch = Watch(page, server)
    for name, path in all_pages(built):
        response = page.goto(server + path, wait_until="networkidle")
        assert response.status == 200, (path, response.status)
        assert page.locator("main").count() == 1
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    assert watch.clean(), (watch.errors, watch.dialogs, watch.foreign)


def test_hostile_ids_render_as_text(page: Page, server, built):
    watch = Watch(page, server)
    assert built["hostile"], "no hostile subject survived to be shown"
    for subject, decision in built["hostile"]:
        page.goto(server + "/subject?id=" + urllib.parse.quote(subject, safe=""))
        expect(page.locator("#subject-id")).to_have_text(subject)
        expect(page.locator(".decision-id").first).to_have_text(decision)
        assert page.locator("main script, main img, main iframe, main svg[onload]").count() == 0
    page.goto(server + "/search?q=D")
    assert page.locator("main script, main img").count() == 0
    assert watch.clean(), (watch.errors, watch.dialogs, watch.foreign)


def test_links_lead_where_they_say(page: Page, server, built):
    watch = Watch(page, server)
    subject, decision = built["hostile"][0]
    page.goto(f"{server}/runs/{built['runs']['nightly']}")
    page.get_by_role("link", name=subject, exact=True).first.click()
    expect(page.locator("#subject-id")).to_have_text(subject)
    page.get_by_role("link", name="credit-default v1").first.click()
    expect(page.locator("h1")).to_have_text("credit-default v1")
    page.goto(f"{server}/runs/{built['runs']['nightly']}")
    page.get_by_role("link", name=decision, exact=True).first.click()
    expect(page.locator("#subject-id")).to_have_text(subject)
    assert page.url.split("#")[1].startswith("d-")
    expect(page.locator("section.decision:target .decision-id")).to_have_text(decision)
    # the search box, then the navigation
    page.get_by_label("subject or decision id").first.fill(decision)
    page.get_by_role("button", name="Search").first.click()
    expect(page.locator("#subject-id")).to_have_text(subject)
    for name, heading in (
        ("Runs", "Runs"),
        ("Model versions", "Model versions"),
        ("Deletion requests", "Deletion requests"),
        ("Re-contact", "Re-contact list"),
        ("Notices due", "Adverse-action notices past due"),
    ):
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.locator("h1")).to_have_text(heading)
    assert watch.clean(), (watch.errors, watch.dialogs, watch.foreign)


def test_recontact_csv_downloads(page: Page, server, built):
    page.goto(server + "/recontact")
    with page.expect_download() as download:
        page.locator("#csv").click()
    text = Path(download.value.path()).read_text()
    rows = list(csv.reader(text.splitlines()))
    expected = read_sql(built["db"], "SELECT COUNT(*) AS n FROM v_recontact")["n"][0]
    assert rows[0][0] == "subject_id" and len(rows) - 1 == expected


def test_a_write_request_is_refused(page: Page, server):
    for method in ("post", "put", "delete"):
        response = getattr(page.request, method)(server + "/runs", data="x")
        assert response.status == 405


def test_the_token_is_required_beyond_loopback(page: Page, built):
    env = {**built["env"]}
    env.pop("GOVERNANCE_UI_TOKEN", None)
    os.environ.pop("GOVERNANCE_UI_TOKEN", None)
    refused = govern("serve", "--home", str(built["home"]), "--host", "0.0.0.0", check=False)
    assert refused.returncode != 0 and "GOVERNANCE_UI_TOKEN" in refused.stderr
    proc, url = serve(built["home"], "0.0.0.0", {**env, "GOVERNANCE_UI_TOKEN": TOKEN})
    try:
        response = page.goto(url + "/runs")
        assert response.status == 401
        expect(page.locator("h1")).to_contain_text("token required")
        response = page.goto(url + "/runs?token=" + TOKEN)
        assert response.status == 200 and "token" not in page.url
        expect(page.locator("h1")).to_have_text("Runs")
        assert page.goto(url + "/deletions").status == 200  # the cookie carries it on
        assert page.request.post(url + "/runs").status in (401, 405)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_erased_subjects_notice_is_kept_for_its_retention(built):
    decision, subject = built["notice"]
    kept = read_sql(
        built["db"], "SELECT decision_id, erasure_request_id, retain_until FROM notices"
    )
    # the credit notice and the GDPR letter, both kept under the erasure request
    assert set(kept["decision_id"]) == {decision} and len(kept) == 2
    assert kept["erasure_request_id"].notna().all()
    engine = sa.create_engine(built["db"])
    with engine.connect() as conn:
        counts = conn.execute(sa.text("SELECT counts FROM tombstones")).scalar()
        left = conn.execute(
            sa.text("SELECT COUNT(*) FROM decisions WHERE subject_id = :s"), {"s": subject}
        ).scalar()
    engine.dispose()
    assert left == 0 and '"kept": 2' in counts and "1002.12(b)" in counts


def test_the_log_s_completion_date_reaches_the_ledger(built):
    stored = read_sql(
        built["db"], "SELECT decided_at, completed_at FROM decisions WHERE completed_at IS NOT NULL"
    )
    assert len(stored) > 0
    gap = pd.to_datetime(stored["decided_at"]) - pd.to_datetime(stored["completed_at"])
    assert (gap == pd.Timedelta(days=2)).all()


def test_report_file_reads_in_the_browser_and_as_pdf(page: Page, built, tmp_path, screenshots):
    from pypdf import PdfReader

    out = tmp_path / "report.html"
    govern(
        "report",
        "--run",
        str(built["runs"]["redeploy"]),
        "--out",
        str(out),
        "--pdf",
        "--home",
        str(built["home"]),
    )
    night = tmp_path / "night.html"
    govern(
        "report",
        "--run",
        str(built["runs"]["nightly"]),
        "--out",
        str(night),
        "--home",
        str(built["home"]),
    )
    for f in (out, night):
        text = f.read_text()
        assert f.stat().st_size < 2_000_000 and "<script" not in text
        assert not re.search(r"(src|href|url)\s*[=(]\s*[\"']?https?:", text)  # self-contained
        watch = Watch(page, "file:")
        page.goto(f.as_uri())
        assert page.locator("svg").count() >= (1 if f == out else 4)
        page.screenshot(path=str(screenshots / f"report-{f.stem}.png"), full_page=True)
        assert watch.clean(), (watch.errors, watch.dialogs, watch.foreign)
    expect(page.locator("h2", has_text="Counts and rates")).to_be_visible()
    pdf = PdfReader(out.with_suffix(".pdf"))
    text = "\n".join(p.extract_text() for p in pdf.pages)
    assert "Redeploy check" in text and "invalidation rate" in text and "Calibration" in text


REQUIRED = (
    "Demo Lending Company",  # creditor's name
    "100 Example Avenue",  # and address
    "denied",  # the action taken
    "Principal reason(s) for denial of credit",
    "The Federal Equal Credit Opportunity Act prohibits creditors from discriminating",
    "Consumer Financial Protection Bureau",  # the agency that supervises the creditor
    "1700 G Street NW",
    "Example Credit Bureau",  # the FCRA block, configured
)


def test_notice_has_the_required_contents_in_every_format(page: Page, built, tmp_path):
    from pypdf import PdfReader

    decision, _ = built["notice"]
    h = ["--home", str(built["home"])]
    html_file, pdf_file = tmp_path / "notice.html", tmp_path / "notice.pdf"
    txt = govern("notice", "--decision", decision, *h)
    govern(
        "notice",
        "--decision",
        decision,
        "--format",
        "html",
        "--out",
        str(html_file),
        *h,
    )
    govern(
        "notice",
        "--decision",
        decision,
        "--format",
        "pdf",
        "--out",
        str(pdf_file),
        *h,
    )
    assert "already issued" in txt.stderr  # asking again shows the notice as sent
    stored = read_sql(built["db"], "SELECT text, reasons, sha256 FROM notices")
    assert txt.stdout == stored["text"][0]
    watch = Watch(page, "file:")
    page.goto(html_file.as_uri())
    shown = page.locator("main").inner_text()
    pdf_text = " ".join(p.extract_text() for p in PdfReader(pdf_file).pages)
    pdf_text = re.sub(r"\s+", " ", pdf_text)
    for document in (shown, txt.stdout, pdf_text):
        flat = re.sub(r"\s+", " ", document)
        for required in REQUIRED:
            assert required.lower() in flat.lower(), required
    reasons = page.locator("#reasons li").all_inner_texts()
    assert 1 <= len(reasons) <= 4
    assert set(reasons) <= set(DEMO_STATEMENTS.values()) | {"<b>Purpose</b> of the loan requested"}
    assert page.locator("main b").count() == 0  # a statement's markup stays text
    assert watch.clean(), (watch.errors, watch.dialogs, watch.foreign)
    gdpr = tmp_path / "letter.html"
    govern(
        "notice",
        "--decision",
        decision,
        "--kind",
        "gdpr",
        "--format",
        "html",
        "--out",
        str(gdpr),
        *h,
    )
    page.goto(gdpr.as_uri())
    letter = page.locator("main").inner_text()
    assert "human intervention" in letter and "Art. 22" in letter
    assert page.locator("#reasons li").all_inner_texts() == reasons


def test_notices_refused_by_the_linter_are_listed_as_overdue_with_the_reason(built):
    h = ["--home", str(built["home"])]
    listed = govern("notices", "--overdue", "--json", "--limit", "500", *h)
    import json

    rows = json.loads(listed.stdout)["rows"]
    assert rows and built["notice"][0] not in [r["decision_id"] for r in rows]
    blocked = [r for r in rows if r["why"].startswith("blocked")]
    for r in blocked:
        refused = govern("notice", "--decision", r["decision_id"], *h, check=False)
        assert refused.returncode == 2 and "refused by the reason linter" in refused.stderr
        assert r["why"].removeprefix("blocked: ") in refused.stderr
        break
