"""What the CLI's renderers say about responsiveness and recourse claims (no subprocess)."""

from __future__ import annotations

from rich.console import Console

from govern_cli import render


def _console() -> Console:
    return Console(record=True, width=100, color_system=None)


def _record(recourse: dict | None, reasons: list[dict]) -> dict:
    return {
        "decided_at": "2026-11-02T09:00:00+00:00",
        "decision_id": "D1",
        "model": "credit",
        "model_version": "v1",
        "score": 0.31,
        "reasons": reasons,
        "verification": {"status": "recourse", "complete_search": True,
                         "points_evaluated": 10, "all_reasons_unresponsive": False,
                         "fixed_with_reasons": False},
        "action_set": {"name": "lending", "version": "1", "sha256": "ab" * 32},
        "responsive_ranking": [{"rank": 1, "feature": "income", "mu": 0.4}],
        "recourse": recourse,
    }


REASONS = [
    {"rank": 1, "feature": "age", "value": 23, "attribution": -0.4, "mu": None,
     "mu_state": "no_action"},
    {"rank": 2, "feature": "debt", "value": 0.5, "attribution": -0.2, "mu": 0.0,
     "mu_state": "scored"},
    {"rank": 3, "feature": "income", "value": 3e4, "attribution": -0.1, "mu": 0.4,
     "mu_state": "scored"},
]


def _changes():
    return [{"feature": "debt", "from": 0.5, "to": 0.3},
            {"feature": "income", "from": 3e4, "to": 3.5e4}]


def test_a_score_of_zero_says_what_it_means_and_no_action_is_its_own_state():
    console = _console()
    render.recourse(console, "S1", [_record(None, REASONS)])
    text = console.export_text()
    assert "cannot help" not in text
    assert "none (cannot change)" in text  # age: no feasible change at all
    assert "0.00" in text and "changing this feature alone cannot lead to approval" in text


def test_the_recourse_line_claims_exactly_what_was_proven():
    said = {}
    for over in ("action_set", "candidate_grid", None):
        console = _console()
        rec = {"recourse_id": "D1@1", "changes": _changes(), "cost": 0.2,
               "score_before": 0.31, "score_after": 0.52, "complete": over is not None,
               "minimal_over": over}
        render.recourse(console, "S1", [_record(rec, REASONS)])
        said[over] = console.export_text()
    assert "minimal in the action set" in said["action_set"]
    assert "minimal on the candidate grid" in said["candidate_grid"]
    assert "not proven minimal" in said[None]
    assert not any("cheapest" in t for t in said.values())


def test_the_nightly_summary_names_the_grid_claim():
    console = _console()
    counts = {"decisions": 10, "denied": 4, "recourse": 3, "recourse_minimal_on_grid": 2,
              "recourse_minimal_in_action_set": 1}
    render.nightly_summary(console, [{"night": "2026-11-02", "counts": counts, "timings": {}}])
    text = console.export_text()
    assert "minimal on grid" in text and "minimal in action set" in text
    assert "cheapest" not in text


def test_fragility_line_claims_only_what_each_method_proves():
    counts = {"recourses": 10, "flippable": 7, "fragile": 5, "fragile_share": 0.5,
              "deletion_sets_retrained": 40}
    screened = render.fragility_line("m", "v1", 5, {"method": "screen", "counts": counts})
    assert "40 deletion sets of at most 5 rows, each retrained exactly" in screened
    assert "7 are broken by a tried set, 5 (50.0%) by 1 or 2 rows" in screened
    assert "no tried set breaks the other 3, which does not prove they survive 5" in screened
    greedy = render.fragility_line("m", "v1", 5, {"method": "exact", "counts": counts})
    assert "7 can be invalidated by at most 5 deletions" in greedy
    assert "exact greedy: an upper bound on the fewest deletions" in greedy


def test_subject_page_fragility_sentence_claims_no_more_than_the_row():
    from govern_cli.web.documents import environment

    page = environment().from_string('{% from "_macros.html" import fragility %}{{ fragility(f) }}')
    row = {"model_version": "credit-default v1", "budget": 5}
    screened = page.render(f={**row, "k": None, "method": "screen"})
    assert "no deletion set of at most 5 rows among those tried breaks it" in screened
    assert "not a proof that none does" in screened and "more than" not in screened
    greedy = page.render(f={**row, "k": None, "method": "exact"})
    assert "the greedy search found no 5 or fewer deletions" in greedy
    broken = page.render(f={**row, "k": 2, "method": "screen"})
    assert "deleting 2 training row(s) found by the search would break it" in broken
