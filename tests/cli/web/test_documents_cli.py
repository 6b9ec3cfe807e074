"""`govern reasons`, `govern notice`, `govern notices` and `govern report` on a small ledger of
hostile values, run in this process as the console script runs them."""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys

import pytest

from tests import review_ledger as rl

SETTINGS = (
    "creditor: {name: Example Bank, address: ['1 Main Street', 'Springfield, ST 00000']}\n"
    "agency: {name: Consumer Financial Protection Bureau, address: ['1700 G Street NW']}\n"
)


def govern(*args: str) -> tuple[int, str, str]:
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
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The small ledger, built once; each test works on a copy."""
    folder = tmp_path_factory.mktemp("template")
    return folder / "governance.db", rl.build(f"sqlite:///{folder / 'governance.db'}")


@pytest.fixture
def home(tmp_path, template):
    import shutil

    shutil.copyfile(template[0], tmp_path / "governance.db")
    url = f"sqlite:///{tmp_path / 'governance.db'}"
    (tmp_path / "notice.yaml").write_text(SETTINGS)
    return tmp_path, ["--home", str(tmp_path), "--db", url], template[1]


def test_reasons_set_checks_the_feature_and_direction(home):
    _, h, _ = home
    base = ["reasons", "set", "--model", "credit", "--version", "v1", "--reviewer", "R. Viewer"]
    code, _, err = govern(*base, "--feature", "nope", "--statement", "Stated", *h)
    assert code == 2 and "'nope' is not a feature of credit v1" in err
    code, _, err = govern(*base, "--feature", "income", "--direction", "up", "--statement", "S", *h)
    assert code == 2 and "direction 'up'" in err
    code, _, err = govern(*base, "--feature", "age", "--statement", "Age of applicant", *h)
    assert code == 0 and "names a protected attribute" in err  # recorded, with the warning
    code, out, _ = govern("reasons", "list", "--model", "credit", "--version", "v1", "--json", *h)
    listed = json.loads(out)
    assert {s["feature"] for s in listed["statements"]} >= {"income", "age", rl.SCRIPT}
    assert listed["unmapped"] == []


def test_reasons_set_from_a_file_supersedes_and_keeps_history(home, tmp_path):
    _, h, _ = home
    f = tmp_path / "s.csv"
    f.write_text("feature,direction,statement\nincome,any,Income too low for the amount\n")
    code, out, err = govern(
        "reasons",
        "set",
        "--model",
        "credit",
        "--version",
        "v1",
        "--reviewer",
        "B",
        "--file",
        str(f),
        *h,
    )
    assert code == 0, err
    code, out, _ = govern(
        "reasons", "list", "--model", "credit", "--version", "v1", "--history", "--json", *h
    )
    income = [s for s in json.loads(out)["statements"] if s["feature"] == "income"]
    assert [s["statement"] for s in income][-1] == "Income too low for the amount"
    assert len(income) == 2 and income[0]["superseded_at"] is not None


def test_a_notice_is_refused_for_protected_unmapped_or_generic_reasons(home):
    _, h, _ = home
    code, out, err = govern("notice", "--decision", rl.decision_of(0), *h)
    assert code == 2 and out == ""
    assert "refused by the reason linter" in err
    assert "names a protected attribute ('age')" in err  # age: unmapped and protected
    assert "is generic" in err  # the <script> feature's statement is "Internal standards"
    code, _, err = govern("notice", "--decision", rl.decision_of(1), *h)
    assert code == 2 and "was approved" in err
    code, _, err = govern("notice", "--decision", "absent", *h)
    assert code == 2 and "no decision 'absent'" in err


def test_a_notice_is_issued_once_and_escapes_the_statements(home, tmp_path):
    _, h, _ = home
    decision = rl.decision_of(6)
    code, text, err = govern("notice", "--decision", decision, *h)
    assert code == 0, err
    assert "flag: reason 2 (debt_ratio) has responsiveness 0" in err
    assert "Income insufficient for amount of credit requested" in text
    assert rl.IMG in text  # plain text keeps the statement as written
    out = tmp_path / "n.html"
    code, _, err = govern(
        "notice", "--decision", decision, "--format", "html", "--out", str(out), *h
    )
    assert code == 0 and "already issued" in err
    page = out.read_text()
    assert rl.IMG not in page and "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script" not in page and "Example Bank" in page
    code, _, err = govern("notice", "--decision", decision, "--format", "pdf", *h)
    assert code == 2 and "needs --out" in err
    code, out_json, _ = govern("notices", "--json", *h)
    issued = json.loads(out_json)
    assert issued["total"] == 2 and decision in [r["decision_id"] for r in issued["rows"]]


def test_notices_overdue_lists_blocked_denials_with_the_reason(home):
    _, h, _ = home
    code, out, _ = govern("notices", "--overdue", "--json", "--limit", "100", *h)
    rows = {r["decision_id"]: r["why"] for r in json.loads(out)["rows"]}
    assert rl.decision_of(2) not in rows  # it has its notice
    assert rows[rl.decision_of(0)].startswith("blocked: ") and "'age'" in rows[rl.decision_of(0)]
    assert rows[rl.decision_of(6)] == "not issued"


def test_report_is_one_self_contained_file(home, tmp_path):
    _, h, info = home
    out = tmp_path / "report.html"
    code, stdout, err = govern(
        "report", "--run", str(info["runs"]["nightly"]), "--out", str(out), "--pdf", *h
    )
    assert code == 0, err
    page = out.read_text()
    assert "<script" not in page and page.count("<svg") >= 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # a hostile check name, as text
    assert "<link" not in page and "Counts and rates" in page
    pdf = out.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 5_000
    code, _, err = govern("report", "--run", "999", "--out", str(out), *h)
    assert code == 2 and "no run #999" in err


def test_serve_refuses_to_bind_beyond_loopback_without_a_token(home):
    _, h, _ = home
    os.environ.pop("GOVERNANCE_UI_TOKEN", None)
    code, _, err = govern("serve", "--host", "0.0.0.0", *h)
    assert code == 2 and "GOVERNANCE_UI_TOKEN" in err
    os.environ["GOVERNANCE_UI_TOKEN"] = "short"
    try:
        code, _, err = govern("serve", "--host", "0.0.0.0", *h)
    finally:
        os.environ.pop("GOVERNANCE_UI_TOKEN", None)
    assert code == 2 and "16 characters" in err


def test_serve_never_creates_a_ledger(tmp_path):
    absent = tmp_path / "absent.db"
    code, _, err = govern("serve", "--db", f"sqlite:///{absent}", "--home", str(tmp_path))
    assert code == 2 and "no ledger" in err and not absent.exists()
