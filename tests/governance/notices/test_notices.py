"""The reason linter, the notice's contents and the notice settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from governance.exceptions import NoticeError
from governance.notices import (
    ECOA_NOTICE,
    describe_change,
    direction_of,
    lint_reasons,
    load_settings,
    notice_content,
)
from governance.notices.lint import mentions, words
from governance.notices.settings import NoticeSettings

STATEMENTS = {
    ("income", "any"): "Income insufficient for amount of credit requested",
    ("debt", "high"): "Excessive obligations in relation to income",
    ("debt", "any"): "Obligations",
    ("util", "any"): "Proportion of balances to credit limits too high",
    ("inquiries", "any"): "Too many recent inquiries",
    ("history", "any"): "Limited credit history",
}
SETTINGS = {
    "creditor": {"name": "Example Bank", "address": ["1 Main St", "Springfield, ST 00000"]},
    "agency": {"name": "Consumer Financial Protection Bureau", "address": ["1700 G Street NW"]},
}


def reasons(*features, mu=0.5, direction="any"):
    return [
        {"rank": i, "feature": f, "direction": direction, "mu": mu}
        for i, f in enumerate(features, 1)
    ]


def test_reviewed_specific_reasons_pass():
    result = lint_reasons(reasons("income", "util"), STATEMENTS)
    assert result.ok and not result.flags
    assert result.statements() == [STATEMENTS[("income", "any")], STATEMENTS[("util", "any")]]


def test_an_unmapped_reason_refuses_the_notice():
    result = lint_reasons(reasons("income", "savings"), STATEMENTS)
    assert not result.ok
    assert result.problems == ("reason 2 (savings) has no reviewed statement for direction 'any'",)


@pytest.mark.parametrize("feature", ["age", "Age", "ForeignWorker", "marital_status", "Male"])
def test_a_protected_attribute_refuses_the_notice(feature):
    result = lint_reasons(reasons("income", feature), {**STATEMENTS, (feature, "any"): "Stated"})
    assert not result.ok and "names a protected attribute" in result.problems[0]


def test_a_statement_naming_a_protected_attribute_refuses_the_notice():
    s = {**STATEMENTS, ("income", "any"): "Applicant's religion"}
    assert "protected attribute ('religion')" in lint_reasons(reasons("income"), s).problems[0]


def test_protected_terms_are_whole_words():
    # "mortgage" holds "age", "average" too: neither names age
    result = lint_reasons(
        reasons("mortgage_accounts", "average_balance"),
        {
            ("mortgage_accounts", "any"): "Number of mortgage accounts",
            ("average_balance", "any"): "Average balance too low",
        },
    )
    assert result.ok
    assert words("ForeignWorker") == "foreign worker" and mentions(
        "foreign_worker", "Foreign Worker"
    )


@pytest.mark.parametrize(
    "statement",
    [
        "Internal standards",
        "Does not meet our internal policies",
        "Insufficient score",
        "Failed to achieve a qualifying score",
    ],
)
def test_generic_statements_refuse_the_notice(statement):
    result = lint_reasons(reasons("income"), {("income", "any"): statement})
    assert not result.ok and "is generic" in result.problems[0]


def test_configured_lists_replace_the_defaults():
    result = lint_reasons(
        reasons("zip_code"),
        {("zip_code", "any"): "Area of residence"},
        protected_terms=["zip code"],
        generic_phrases=[],
    )
    assert "('zip code')" in result.problems[0]


def test_unresponsive_reasons_are_flagged_not_refused():
    rs = reasons("income", "util")
    rs[1]["mu"] = 0.0
    result = lint_reasons(rs, STATEMENTS, recourse_status="fixed")
    assert result.ok
    assert any("reason 2 (util) has responsiveness 0" in f for f in result.flags)
    assert any("the denial is fixed" in f for f in result.flags)


def test_no_feasible_action_is_flagged_as_such():
    rs = reasons("income")
    rs[0].update(mu=None, no_feasible_action=True)
    result = lint_reasons(rs, STATEMENTS)
    assert result.ok and result.flags == (
        "reason 1 (income): no feasible action under the action set changes it",
    )


def test_the_linter_never_swaps_in_other_reasons():
    # reason 1 is unmapped; the others are fine, and the notice is still refused, not reworded
    result = lint_reasons(reasons("savings", "income", "util", "inquiries", "history"), STATEMENTS)
    assert not result.ok
    assert [r.feature for r in result.reasons] == ["savings", "income", "util", "inquiries"]


def test_at_most_four_reasons_and_shared_statements_once():
    s = {**STATEMENTS, ("inquiries", "any"): STATEMENTS[("util", "any")]}
    result = lint_reasons(reasons("income", "util", "inquiries", "history", "debt"), s)
    assert len(result.reasons) == 4 and "debt" not in [r.feature for r in result.reasons]
    assert len(result.statements()) == 3


def test_direction_comes_from_the_action_set_and_falls_back_to_any():
    aset = {
        "features": [
            {"name": "debt", "step_direction": -1},
            {"name": "income", "step_direction": 1},
            {"name": "history", "step_direction": 0},
        ]
    }
    assert direction_of("debt", aset) == "high" and direction_of("income", aset) == "low"
    assert direction_of("history", aset) == "any" and direction_of("x", None) == "any"
    high = lint_reasons(reasons("debt", direction="high"), STATEMENTS)
    assert high.statements() == ["Excessive obligations in relation to income"]
    low = lint_reasons(reasons("debt", direction="low"), STATEMENTS)
    assert low.statements() == ["Obligations"]


def test_a_denial_without_reasons_is_refused():
    assert "no principal reasons" in lint_reasons([], STATEMENTS).problems[0]


def record(**extra):
    return {
        "decision_id": "D1",
        "subject_id": "S1",
        "decided_at": datetime(2026, 11, 2, 10, tzinfo=UTC),
        "completed_at": None,
        "model_name": "credit",
        "model_version": "v1",
        "features": {"bureau": 640},
        "feature_specs": [
            {"name": "income", "dtype": "float", "description": "Gross annual income"},
            {"name": "has_cosigner", "dtype": "bool", "description": "1 if a co-signer signs"},
        ],
        "recourse": {
            "changes": [
                {"feature": "income", "from": 42000.0, "to": 51500.0},
                {"feature": "has_cosigner", "from": 0, "to": 1},
            ]
        },
        **extra,
    }


def test_notice_content_carries_what_regulation_b_requires():
    settings = NoticeSettings.from_dict(SETTINGS)
    lint = lint_reasons(reasons("income", "util"), STATEMENTS)
    c = notice_content(record(), lint, settings, issued_at=datetime(2026, 11, 20, tzinfo=UTC))
    assert c.creditor.name == "Example Bank" and c.agency.name.startswith("Consumer Financial")
    assert c.reasons == tuple(lint.statements()) and c.ecoa_notice == ECOA_NOTICE
    assert c.due_on.isoformat() == "2026-12-02" and c.fcra is None
    assert c.actions == (
        "Gross annual income: from 42,000 to 51,500",
        "Has cosigner: from no to yes",
    )


def test_due_date_counts_from_a_completed_application():
    settings = NoticeSettings.from_dict({**SETTINGS, "due_days": 10})
    lint = lint_reasons(reasons("income"), STATEMENTS)
    c = notice_content(
        record(completed_at=datetime(2026, 10, 30, tzinfo=UTC)),
        lint,
        settings,
        issued_at=datetime(2026, 11, 3, tzinfo=UTC),
    )
    assert c.completed_on.isoformat() == "2026-10-30" and c.due_on.isoformat() == "2026-11-09"


def test_fcra_block_when_configured():
    settings = NoticeSettings.from_dict(
        {
            **SETTINGS,
            "fcra": {
                "agency": {"name": "Bureau Inc", "phone": "1-800"},
                "score_feature": "bureau",
                "score_range": [300, 850],
            },
        }
    )
    lint = lint_reasons(reasons("income"), STATEMENTS)
    c = notice_content(record(), lint, settings, issued_at=datetime(2026, 11, 3, tzinfo=UTC))
    assert c.fcra["agency"].name == "Bureau Inc" and c.fcra["score"] == 640
    assert c.fcra["range"] == (300.0, 850.0) and c.fcra["key_factors"] == tuple(lint.statements())


def test_a_refused_lint_cannot_become_a_notice():
    settings = NoticeSettings.from_dict(SETTINGS)
    lint = lint_reasons(reasons("savings"), STATEMENTS)
    with pytest.raises(ValueError, match="refused"):
        notice_content(record(), lint, settings, issued_at=datetime(2026, 11, 3, tzinfo=UTC))


def test_describe_change_formats_by_type():
    assert describe_change({"feature": "n_accounts", "from": 7.0, "to": 5.0}, {"dtype": "int"}) == (
        "N accounts: from 7 to 5"
    )
    assert describe_change({"feature": "dti", "from": 0.456, "to": 0.3}) == "Dti: from 0.46 to 0.30"


def test_settings_are_checked(tmp_path):
    with pytest.raises(NoticeError, match="no notice settings"):
        load_settings(tmp_path / "absent.yaml")
    bad = tmp_path / "n.yaml"
    bad.write_text("creditor: {name: X}\n")
    with pytest.raises(NoticeError, match="agency"):
        load_settings(bad)
    bad.write_text("creditor: {name: X}\nagency: {name: Y}\ndue_days: -1\n")
    with pytest.raises(NoticeError, match="due_days"):
        load_settings(bad)
    bad.write_text("creditor: [unclosed\n")
    with pytest.raises(NoticeError, match="not valid YAML"):
        load_settings(bad)
