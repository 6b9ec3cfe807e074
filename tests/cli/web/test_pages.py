"""The review app's pages over a ledger with hostile values, through Starlette's TestClient:
every page answers, every stored value is escaped, every link resolves, nothing writes."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from markupsafe import escape

from govern_cli.web.app import create_app, csv_cell, needs_token
from tests import review_ledger as rl
from tests.conftest import reset_pg


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        self.tags.append(tag)
        for k, v in attrs:
            if k == "href" and v:
                self.hrefs.append(v)


def parse(text: str) -> Links:
    p = Links()
    p.feed(text)
    return p


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ledger(request, tmp_path_factory):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('review') / 'ledger.db'}"
    else:
        url = request.getfixturevalue("pg_url")
        reset_pg(url)
    return url, rl.build(url)


@pytest.fixture(scope="module")
def client(ledger):
    url, _ = ledger
    return TestClient(create_app(url, per_page=4))


def pages(info: dict) -> list[str]:
    runs = info["runs"]
    return [
        "/runs",
        f"/runs/{runs['nightly']}",
        f"/runs/{runs['failed']}",
        f"/runs/{runs['redeploy']}",
        f"/subject?id={rl.subject_of(0)}",
        "/models",
        f"/models/{info['versions']['v1']}",
        f"/models/{info['versions']['v2']}",
        "/deletions",
        "/recontact",
        f"/recontact?run={runs['redeploy']}",
        "/notices",
        "/search?q=S00",
    ]


def test_every_page_answers_and_escapes_every_stored_value(client, ledger):
    _, info = ledger
    for path in pages(info):
        r = client.get(path, params=None)
        assert r.status_code == 200, (path, r.status_code)
        assert r.headers["content-type"].startswith("text/html")
        body = r.text
        for raw in (rl.SCRIPT, rl.IMG):
            assert raw not in body, (path, raw)
        # nothing stored can add an element: the only tags are the templates' own
        tags = set(parse(body).tags)
        assert not tags & {"script", "img", "iframe", "object", "embed"}, (path, tags)
        assert "default-src 'none'" in r.headers["content-security-policy"]


def test_hostile_values_show_as_text(client, ledger):
    _, info = ledger
    page = client.get("/subject", params={"id": rl.subject_of(0)}).text
    assert escape(rl.subject_of(0)) in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # a feature named <script>
    run = client.get(f"/runs/{info['runs']['nightly']}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in run  # a quarantine check, and in the SVG
    assert escape(rl.SQL) in run
    failed = client.get(f"/runs/{info['runs']['failed']}").text
    assert "DecisionLogError: &lt;script&gt;" in failed


def test_every_link_leads_where_it_says(client, ledger):
    """Crawl from every page: each internal link answers (redirects followed), and each subject
    or decision link lands on a page naming exactly that id."""
    _, info = ledger
    seen: set[str] = set()
    for start in pages(info):
        for href in parse(client.get(start).text).hrefs:
            if not href.startswith("/") or href in seen:
                continue
            seen.add(href)
            r = client.get(href)
            assert r.status_code == 200, (start, href, r.status_code)
            parts = urlsplit(href)
            wanted = parse_qs(parts.query).get("id", [None])[0]
            if parts.path == "/subject":
                assert f'<span id="subject-id">{escape(wanted)}</span>' in r.text, href
            if parts.path == "/decision":
                assert escape(wanted) in r.text, href
    assert any(h.startswith("/subject?id=") for h in seen)
    assert any(h.startswith("/decision?id=") for h in seen)


def test_decision_link_redirects_to_its_subject_and_anchor(client):
    did = rl.decision_of(0)
    r = client.get("/decision", params={"id": did}, follow_redirects=False)
    assert r.status_code == 303
    from govern_cli.web.documents import anchor

    assert r.headers["location"].endswith("#" + anchor(did))
    page = client.get(r.headers["location"]).text
    assert f'id="{anchor(did)}"' in page


def test_search_finds_exact_ids_and_prefixes(client):
    r = client.get("/search", params={"q": rl.subject_of(2)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/subject?id=")
    r = client.get("/search", params={"q": rl.decision_of(3)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/decision?id=")
    listing = client.get("/search", params={"q": "S00"}).text
    assert "S0006" in listing and "D0007" not in listing
    # four a page: S0006, S0007, S0008, S0009, then S0010 and S0011 on the next
    assert "S0009" in listing and "S0010" not in listing and 'rel="next"' in listing
    more = client.get("/search", params={"q": "S00", "page": 2}).text
    assert "S0010" in more and "S0011" in more and 'rel="next"' not in more
    # LIKE wildcards mean nothing: "%" finds only ids that start with "%"
    assert "S0006" not in client.get("/search", params={"q": "%"}).text


def test_subject_page_shows_the_decision_in_full(client):
    page = client.get("/subject", params={"id": rl.subject_of(0)}).text
    assert "minimal on the candidate grid (proven)" in page
    assert "no: re-contact" in page  # the redeploy check invalidated this recourse
    assert "no change to this feature alone" in page  # responsiveness 0 in words
    assert "40% of the changes" in page
    assert "Explanation quality" in page
    assert "overdue" in page  # denied long ago, no notice
    other = client.get("/subject", params={"id": rl.subject_of(2)}).text
    assert "N-test" in other and "Notice text &lt;script&gt;" in other


def test_lists_paginate(client, ledger):
    _, info = ledger
    run = client.get(f"/runs/{info['runs']['nightly']}").text
    assert "page 1 of 3" in run  # 12 decisions, 4 a page
    second = client.get(f"/runs/{info['runs']['nightly']}", params={"page": 2}).text
    assert "page 2 of 3" in second and 'rel="prev"' in second
    assert client.get("/runs", params={"page": 0}).status_code == 422


def test_model_page_shows_checks_calibration_and_statements(client, ledger):
    _, info = ledger
    v2 = client.get(f"/models/{info['versions']['v2']}").text
    assert "redeploy-checks" in v2 and "50.0%" in v2 and "failed" in v2
    assert "calibration" in v2
    v1 = client.get(f"/models/{info['versions']['v1']}").text
    assert "Income insufficient for amount of credit requested" in v1
    assert "&lt;script&gt;" in v1 and "aaaaaaaaaaaaaaaa" in v1
    # the MLflow alias history the ledger recorded for the model
    assert "alias-history" in v2 and "credit-mlflow" in v2 and "champion" in v2


def test_deletions_list_overdue_first_with_tombstone(client):
    page = client.get("/deletions").text
    assert page.index("overdue") < page.index("purged")
    assert "notice(s) kept until" in page and "1002.12(b)" in page


def test_recontact_csv_exports_the_view_with_formulas_neutralised(client, ledger):
    url, info = ledger
    r = client.get("/recontact.csv", params={"run": info["runs"]["redeploy"]})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        expected = conn.execute(sa.text("SELECT COUNT(*) FROM v_recontact")).scalar()
    engine.dispose()
    assert rows[0][0] == "subject_id" and len(rows) - 1 == expected > 0
    assert all(not row[0].startswith(("=", "+", "@")) for row in rows[1:])
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("S1") == "S1"


def test_notices_page_lists_overdue_denials_with_the_linters_refusal(client):
    page = client.get("/notices").text
    assert "blocked by the reason linter" in page
    assert "names a protected attribute" in page  # age is a reason of some denials


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_no_request_writes(client, method):
    r = client.request(method.upper(), "/runs", content=b"x")
    assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert client.request(method.upper(), "/subject?id=S1").status_code == 405


def test_the_ledger_is_opened_read_only(ledger):
    url, _ = ledger
    from governance.store.engine import readonly_engine

    engine = readonly_engine(url)
    with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
        conn.execute(sa.text("DELETE FROM runs"))
    engine.dispose()


def test_missing_pages_are_404_not_errors(client):
    assert client.get("/runs/999999").status_code == 404
    assert client.get("/models/999999").status_code == 404
    assert client.get("/decision", params={"id": "nope"}).status_code == 404
    assert client.get("/subject", params={"id": "nobody"}).status_code == 200
    assert client.get("/favicon.ico").status_code == 200


def test_token_is_required_when_asked(ledger):
    url, _ = ledger
    token = "t" * 24
    c = TestClient(create_app(url, token=token))
    assert c.get("/runs").status_code == 401
    assert c.get("/static/style.css").status_code == 200  # no ledger data in it
    assert c.get("/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/runs", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    r = c.get("/runs?token=" + token, follow_redirects=False)
    assert r.status_code == 303 and "token" not in r.headers["location"]
    assert "httponly" in r.headers["set-cookie"].lower()
    assert c.get("/runs").status_code == 200  # the cookie now carries it
    assert needs_token("0.0.0.0") and needs_token("10.0.0.5") and not needs_token("127.0.0.1")


def test_an_old_schema_is_refused_not_misread(tmp_path):
    from governance.exceptions import StoreError

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE decisions (decision_id TEXT)"))
        conn.execute(sa.text("CREATE TABLE alembic_version (version_num TEXT)"))
        conn.execute(sa.text("INSERT INTO alembic_version VALUES ('0004')"))
    engine.dispose()
    with pytest.raises(StoreError, match="schema revision 0004"):
        create_app(url)
    with pytest.raises(StoreError, match="no ledger"):
        create_app(f"sqlite:///{tmp_path / 'absent.db'}")


def test_responsiveness_in_words_and_value_formatting():
    from govern_cli.web.documents import anchor, fmt_num, mu_words, url_part
    from governance.store.notices import no_action

    assert mu_words({"mu": None}).startswith("not scored")
    assert mu_words({"mu": 0.0}).startswith("no change to this feature alone")
    assert mu_words({"mu": 0.25}).startswith("25% of the changes")
    assert mu_words({"mu": None, "no_feasible_action": True}).startswith("no feasible action")
    assert no_action("no_action") is True and no_action("scored") is False
    assert no_action(None) is None
    assert fmt_num(33.0) == "33" and fmt_num(0.4567) == "0.457" and fmt_num(None) == "—"
    assert url_part("a/b?c=d&e#f %") == "a%2Fb%3Fc%3Dd%26e%23f%20%25"
    assert anchor("<x>") == anchor("<x>") != anchor("<y>") and anchor("<x>").startswith("d-")


def test_a_cached_run_report_is_redone_after_an_erasure(tmp_path):
    from datetime import UTC, datetime

    from governance.store import session_factory
    from governance.store.engine import make_engine
    from governance.store.models import DeletionRequest, Tombstone
    from governance.store.purge import purge_subjects

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    info = rl.build(url)
    c = TestClient(create_app(url))
    path = f"/runs/{info['runs']['nightly']}"
    decisions = '<tr><th>decisions</th><td class="num">{}</td></tr>'
    assert decisions.format(12) in c.get(path).text
    engine = make_engine(url)
    now = datetime.now(UTC)
    with session_factory(engine).begin() as s:
        purge_subjects(s, ["S0007"])
        s.add(
            DeletionRequest(
                request_id="del-z",
                subject_hash="9" * 64,
                received_at=now,
                due_at=now,
                status="purged",
                counts={},
            )
        )
        s.flush()
        s.add(
            Tombstone(
                request_id="del-z", subject_hash="9" * 64, received_at=now, purged_at=now, counts={}
            )
        )
    engine.dispose()
    assert decisions.format(11) in c.get(path).text
